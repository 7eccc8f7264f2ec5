/**
 * A periodic task that never overlaps itself and never throws: a failure is reported to
 * `onError` (logged by the caller) and the next tick tries again. The timer does not hold the
 * process open.
 */
export function every(seconds: number, task: () => Promise<unknown>, onError: (err: unknown) => void = () => undefined): NodeJS.Timeout {
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    void task()
      .catch(onError)
      .finally(() => {
        running = false;
      });
  }, seconds * 1000);
  t.unref();
  return t;
}
