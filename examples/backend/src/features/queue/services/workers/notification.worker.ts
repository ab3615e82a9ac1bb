import { UnrecoverableError } from '@anant/queue-native';
import type { Job } from '@anant/queue-native';
import { mailer } from '../../../../integrations/mailer';
import { QueueName } from '../../shared/config';
import { EventType, type EventEnvelope, type NotificationResult, type SendEmailData, type SendSmsData } from '../../shared/types';
import { BaseWorker } from './base.worker';

type NotificationEvent = SendEmailData | SendSmsData;

export function renderEmail(data: SendEmailData): string {
  const vars = Object.entries(data.variables)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
  return `[${data.template}]\n${vars}`;
}

/** notifications-queue: sends emails and text messages. */
export class NotificationWorker extends BaseWorker<NotificationEvent, NotificationResult> {
  constructor() {
    super(QueueName.NOTIFICATIONS);
  }

  protected async processJob(job: Job<EventEnvelope<NotificationEvent>>): Promise<NotificationResult> {
    switch (job.data.type) {
      case EventType.SEND_EMAIL: {
        const email = job.data.data as SendEmailData;
        if (!email.to) throw new UnrecoverableError('Invalid email: no recipient');
        return { channel: 'email', messageId: await mailer.sendEmail(email.to, email.subject, renderEmail(email)) };
      }
      case EventType.SEND_SMS: {
        const sms = job.data.data as SendSmsData;
        if (!sms.to) throw new UnrecoverableError('Invalid SMS: no recipient');
        return { channel: 'sms', messageId: await mailer.sendSms(sms.to, sms.body) };
      }
      default:
        throw new UnrecoverableError(`${this.name} cannot handle events of type ${job.data.type}`);
    }
  }
}
