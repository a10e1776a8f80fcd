/**
 * spoolq's public surface. Every export is named here; nothing else under lib/ is public.
 */
export { SpoolError, ERROR_CODES } from './errors.js';
export { Queue } from './queue/queue.js';
export type { JobType, QueueEventMap } from './queue/queue.js';
export { QueueEvents } from './queue/queue-events.js';
export type { QueueEventsOptions, QueueEventsEventMap } from './queue/queue-events.js';
export { Job } from './queue/job.js';
export type { PublicJobState } from './queue/job.js';
export type { QueueOptions, JobsOptions, BackoffOptions } from './queue/options.js';
export type { BackoffStrategy } from './queue/backoff.js';
export { Worker } from './worker/worker.js';
export type { WorkerOptions, WorkerEventMap } from './worker/worker.js';
export type { Processor, ProcessorMap } from './worker/runners.js';
export { UnrecoverableError } from './worker/unrecoverable-error.js';
export type { SpoolErrorCode } from './errors.js';

export { Log } from './log/log.js';
export type { LogOptions, LogEvents } from './log/log.js';
export type { Durability, RecordPointer } from './log/writer.js';
export type { LogEntry, LogScanSummary } from './log/log-scan.js';
export { CompactionError } from './log/compactor.js';
export type { CompactOptions, CompactionResult } from './log/compactor.js';
export type { RecoveryReport } from './log/recovery.js';
export type { DamagedRange } from './log/segment-scanner.js';

export { readLog } from './log/read-log.js';
export type { ReadLogOptions } from './log/read-log.js';
export { verifyLog } from './log/verify.js';
export type { VerifyReport } from './log/verify.js';
export { logStats } from './log/stats.js';
export type { LogStats } from './log/stats.js';
export { queueStats } from './store/queue-stats.js';
export type { QueueStats } from './store/queue-stats.js';
export { tailLog } from './log/tailer.js';
export type { TailOptions, Tailer } from './log/tailer.js';

export { RecordCodec, type PayloadDecoder } from './codec/record-codec.js';
/** Record flag bits as readers see them in LogEntry.flags. */
export { FLAG_LZ4, FLAG_AES } from './format/record.js';
export type { EncryptionOptions, KeySpec } from './codec/keyring.js';
export type { Fs } from './log/fs.js';
