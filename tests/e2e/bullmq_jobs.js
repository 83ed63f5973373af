// A BullMQ queue as applications run it: N jobs added in bulk, some delayed, some
// failing on their first attempt and retried with backoff, processed by a worker with
// concurrency. Prints a JSON summary the test compares between redis-server and us.
// Usage: node bullmq_jobs.js <host> <port> <jobs>
const { Queue, Worker, QueueEvents } = require("bullmq");

async function main() {
  const [host, port, n] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4] || 10000)];
  const connection = { host, port, maxRetriesPerRequest: null };
  const name = "e2e-jobs";
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();

  const failedOnce = new Set();
  let completed = 0;
  let sum = 0;
  let failedEvents = 0;
  const done = new Promise((resolve) => {
    events.on("completed", ({ returnvalue }) => {
      completed += 1;
      sum += Number(returnvalue);
      if (completed === n) resolve();
    });
    events.on("failed", () => { failedEvents += 1; });
  });

  const worker = new Worker(name, async (job) => {
    const i = job.data.i;
    // Every 10th job fails on its first attempt and must be retried.
    if (i % 10 === 0 && job.attemptsMade === 0) {
      failedOnce.add(i);
      throw new Error(`first attempt of ${i} fails`);
    }
    return i * 2;
  }, { connection, concurrency: 50 });

  const batch = [];
  for (let i = 0; i < n; i++) {
    const opts = { attempts: 3, backoff: { type: "fixed", delay: 20 }, removeOnComplete: false };
    // Every 100th job is delayed.
    if (i % 100 === 1) opts.delay = 300;
    batch.push({ name: "job", data: { i }, opts });
  }
  const t0 = Date.now();
  for (let k = 0; k < batch.length; k += 1000) {
    await queue.addBulk(batch.slice(k, k + 1000));
  }
  const timeout = setTimeout(() => {
    console.error(`timeout: ${completed}/${n} completed`);
    process.exit(2);
  }, 120000);
  await done;
  clearTimeout(timeout);
  const elapsed = Date.now() - t0;
  const counts = await queue.getJobCounts("completed", "failed", "delayed", "wait", "active");
  const sample = await queue.getJob("10");
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log(JSON.stringify({
    completed,
    sum,
    retried: failedOnce.size,
    failedEvents,
    counts,
    sampleAttempts: sample ? sample.attemptsMade : null,
    elapsedMs: elapsed,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
