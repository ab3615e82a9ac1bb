import { io } from './latency';

export interface OutgoingMessage {
  channel: 'email' | 'sms';
  to: string;
  subject?: string;
  body: string;
  messageId: string;
  sentAt: string;
}

/** Email and SMS provider (simulated): keeps the last messages it "sent". */
class Mailer {
  readonly outbox: OutgoingMessage[] = [];
  private sequence = 0;

  async sendEmail(to: string, subject: string, body: string): Promise<string> {
    await io(2);
    return this.record({ channel: 'email', to, subject, body });
  }

  async sendSms(to: string, body: string): Promise<string> {
    await io(2);
    return this.record({ channel: 'sms', to, body });
  }

  private record(msg: Omit<OutgoingMessage, 'messageId' | 'sentAt'>): string {
    const messageId = `msg_${process.pid}_${(++this.sequence).toString(36)}`;
    this.outbox.push({ ...msg, messageId, sentAt: new Date().toISOString() });
    if (this.outbox.length > 10_000) this.outbox.splice(0, this.outbox.length - 10_000);
    return messageId;
  }
}

export const mailer = new Mailer();
