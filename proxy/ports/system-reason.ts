/**
 * What a file-system error says, without the syscall and paths Node appends ("ENOENT: no such
 * file or directory, open '/x.partial-1'" is "ENOENT: no such file or directory"): the path the
 * user gave leads the message instead, and a temporary name would only mislead.
 */
export function systemReason(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  return typeof (cause as NodeJS.ErrnoException | undefined)?.syscall === 'string' ? text.replace(/, \w+ '.*$/s, '') : text;
}
