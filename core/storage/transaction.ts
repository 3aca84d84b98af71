/** One transaction on one pooled client: BEGIN, the work, COMMIT; ROLLBACK when the work throws. */
import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` in a transaction on a client of `db` and returns its result. The client is released
 * either way; a failed ROLLBACK (the connection is gone) does not hide the work's error.
 * @example
 * const id = await inTransaction(ctx.db, async (client) => {
 *   const { rows } = await client.query('INSERT INTO widgets (name) VALUES ($1) RETURNING id', [name]);
 *   await client.query('INSERT INTO parley_audit (tenant_id, actor, action) VALUES ($1, $2, $3)', [tenant, actor, 'widget.create']);
 *   return rows[0].id;
 * });
 */
export async function inTransaction<T>(db: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
