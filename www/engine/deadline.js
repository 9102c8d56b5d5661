// A promise that settles like `promise`, or rejects with `what` after `ms`: for the steps of
// starting an engine that a browser may leave pending forever instead of failing.
export function withDeadline(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
