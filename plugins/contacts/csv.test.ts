/** The CSV reader and the import's row checks. */
import { describe, expect, it } from 'vitest';
import { parseCsv, readImport } from './csv.js';

describe('CSV import', () => {
  it('reads quoted CSV and reports every problem of every row with its line', () => {
    expect(parseCsv('a,b\n"x, ""y""",2\r\n\n3,4')).toEqual([
      { line: 1, cells: ['a', 'b'] },
      { line: 2, cells: ['x, "y"', '2'] },
      { line: 4, cells: ['3', '4'] },
    ]);
    const r = readImport('name,phone,timezone,tags,plan\nAna,+15550100001,America/New_York,vip;es,gold\nBob,555-0101,Mars/Base,,\nCy,+15550100001,,,\n', { defaultChannel: 'twilio-sms', maxRows: 10 });
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]!.input).toMatchObject({ name: 'Ana', timezone: 'America/New_York', tags: ['vip', 'es'], fields: { plan: 'gold' }, addresses: [{ channel: 'twilio-sms', address: '+15550100001' }] });
    expect(r.errors).toEqual([
      { line: 3, errors: [expect.stringMatching(/^phone: "555-0101" is not an E.164 number/), expect.stringMatching(/^timezone: "Mars\/Base"/)] },
      { line: 4, errors: ['address: the same twilio-sms address as line 2'] },
    ]);
  });
});
