import winston from 'winston';

// The backend's logger: JSON in production, readable lines elsewhere. LOG_LEVEL picks the level
// (error, warn, info, debug); LOG_LEVEL=silent turns logging off (the load runs use it).
const level = process.env.LOG_LEVEL || (process.env.NODE_ENV === 'test' ? 'warn' : 'info');

export const logger = winston.createLogger({
  level: level === 'silent' ? 'error' : level,
  silent: level === 'silent',
  defaultMeta: { service: 'anant-backend', pid: process.pid },
  format:
    process.env.NODE_ENV === 'production'
      ? winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          winston.format.errors({ stack: true }),
          winston.format.printf(({ timestamp, level: lvl, message, service: _service, pid: _pid, ...meta }) => {
            const rest = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : '';
            return `${timestamp} ${lvl.padEnd(5)} ${message}${rest}`;
          }),
        ),
  transports: [new winston.transports.Console()],
});
