/**
 * An open-loop load generator at an even rate: request i is due at start + i / rate, whatever the
 * server's answers do, over a pool of kept-alive connections.
 *
 * Why not autocannon's `overallRate`: autocannon gives each connection a budget per second and resets
 * it on a one-second interval (`reqsMadeThisSecond` in its lib/httpClient.js), so every connection
 * spends its budget as fast as the server answers at the start of each second and then waits. At
 * 100/s over 50 connections that is a burst of 100 requests every second, and its p99 measures how
 * long the burst queues, not the latency of messages that arrive 10 ms apart, as the targets mean.
 *
 * Latency is counted from the time a request was due, not the time a free connection sent it, so a
 * server that falls behind is charged for the wait (no coordinated omission).
 */
import http from 'node:http';
import type { BenchRequest } from './scenarios.js';

export interface PacedResult {
  /** Requests sent, and those answered with a 2xx / another status / an error or timeout. */
  sent: number;
  accepted: number;
  non2xx: number;
  errors: number;
  /** Answers per second over the run. */
  rps: number;
  /** Latency percentiles from the due time (ms). */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** How late the generator itself sent, at the 99th percentile (ms): its own timer and CPU. */
  sendLagP99: number;
}

/** The p-th percentile (0-100) of an ascending list, 0 when it is empty. */
export const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0);

export async function paced(
  url: string,
  next: () => BenchRequest,
  { rate, seconds, connections, timeoutMs = 10_000, onAnswer }: { rate: number; seconds: number; connections: number; timeoutMs?: number; onAnswer?: (dueMs: number, latencyMs: number) => void },
): Promise<PacedResult> {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  const lags: number[] = [];
  let accepted = 0;
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let settled = 0;
  const t0 = performance.now() + 20;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const settle = () => {
    if (++settled === total) done();
  };

  const send = (due: number) => {
    const request = next();
    sent++;
    // Each request ends once: answered, or failed (an error of the request, or of a response cut off).
    let ended = false;
    const failed = () => {
      if (ended) return;
      ended = true;
      errors++;
      settle();
    };
    const req = http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.path, headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) }, agent, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('error', failed);
        res.on('aborted', failed);
        res.on('end', () => {
          if (ended) return;
          ended = true;
          const latency = performance.now() - due;
          latencies.push(latency);
          onAnswer?.(due - t0, latency);
          if (res.statusCode! >= 200 && res.statusCode! < 300) accepted++;
          else non2xx++;
          settle();
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', failed);
    lags.push(performance.now() - due);
    req.end(request.body);
  };

  const tick = () => {
    const now = performance.now();
    while (sent < total) {
      const due = t0 + (sent * 1000) / rate;
      if (due > now) {
        setTimeout(tick, Math.max(0, due - performance.now()));
        return;
      }
      send(due);
    }
  };
  setTimeout(tick, 20);
  await finished;
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    sent,
    accepted,
    non2xx,
    errors,
    rps: Math.round((accepted + non2xx) / elapsed),
    p50: round(percentile(latencies, 50)),
    p90: round(percentile(latencies, 90)),
    p99: round(percentile(latencies, 99)),
    max: round(latencies.at(-1) ?? 0),
    sendLagP99: round(percentile(lags, 99)),
  };
}
