/**
 * The check a job's result passes before its outcome goes to the owner (job-loop.ts, #report): the log stores it as
 * JSON, within maxDataBytes like job data. Pure; owns nothing else.
 */
import { SpoolError } from '../errors.js';

/**
 * A job's result as the JSON the log stores, or why it cannot be stored: it must be JSON within maxDataBytes, like
 * job data. A value JSON drops (a function, a symbol) is stored as null, as it would be inside an object.
 */
export function checkResult(result: unknown, maxBytes: number): string | SpoolError {
  let json: string;
  try {
    json = JSON.stringify(result) ?? 'null';
  } catch (cause) {
    return new SpoolError('ERR_INVALID_ARG', `the job's result is not serializable as JSON: ${(cause as Error).message}`, { cause });
  }
  // Bytes are at most 3 per UTF-16 unit: count them only when the string could be over the limit.
  const bytes = json.length * 3 <= maxBytes ? json.length : Buffer.byteLength(json);
  if (bytes > maxBytes) return new SpoolError('ERR_TOO_LARGE', `the job's result of ${bytes} bytes is over maxDataBytes (${maxBytes})`);
  return json;
}
