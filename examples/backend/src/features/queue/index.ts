export * from './shared/config';
export * from './shared/types';
export { queueService } from './services/queue.service';
export { eventPublisher, causedBy } from './services/event-publisher.service';
export { startWorkers, stopWorkers, getWorkersHealth } from './services/workers';
