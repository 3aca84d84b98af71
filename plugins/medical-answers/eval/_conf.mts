import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
import { MedicalStore } from '../engine/store.js';
import { confidenceOf } from '../engine/answer.js';
const db = await openDatabase({ dataDir: '/tmp/medscratch/db', poolSize: 4, log: pino({ level: 'warn' }) });
const store = new MedicalStore(db.pool);
await store.init();
for (const q of ['whats the weather tomorrow', 'can you book me a table for two', 'my car makes a weird noise when braking', 'lol ok thanks', 'who won the game last night', 'what time do you close', 'is it contagious', 'whats a normal a1c number?', 'how do people catch hep b', 'What is (are) Glaucoma?']) {
  const hits = await store.search('eval', q, { k: 5 });
  console.log(confidenceOf(hits).toFixed(3), q, hits[0]?.title, hits[0]?.coverage?.toFixed(2));
}
await db.close();
