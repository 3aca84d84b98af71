/** Requests the bench sends: each scenario has Parley's request and the bare baseline's equivalent. */
import type { LoadResult } from './run.js';

export interface Scenario {
  name: string;
  request: () => () => { method: 'POST'; path: string; headers: Record<string, string>; body: string };
  bareRequest: () => { method: 'POST'; path: string; headers: Record<string, string>; body: string };
  embedded?: LoadResult;
  baseline?: LoadResult;
}

export function benchScenarios({ key }: { key: string }): Scenario[] {
  let n = 0;
  const texts = ['what are your hours?', 'where are you?', 'I would like an appointment', 'hello', 'can I bring my dog?'];
  const http = (): { method: 'POST'; path: string; headers: Record<string, string>; body: string } => {
    n++;
    return {
      method: 'POST',
      path: '/v1/tenants/demo/messages',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ from: `+1555${String(n % 5000).padStart(7, '0')}`, text: texts[n % texts.length], id: `bench-${process.pid}-${Date.now()}-${n}` }),
    };
  };
  return [{ name: 'http channel, demo pipeline, persisted', request: () => http, bareRequest: http }];
}
