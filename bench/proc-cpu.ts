/** CPU time of processes and threads, read from /proc (Linux), for figures steadier than wall time on shared cores. */
import { readFileSync } from 'node:fs';

/** User + system CPU time (ms) a process (every thread of it) has used so far, from /proc. */
export function cpuMs(pid: number): number {
  return cpuOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** User + system CPU time (ms) of a /proc `stat` line (a process's or a thread's). */
export function cpuOfStat(stat: string): number {
  const fields = stat.split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
