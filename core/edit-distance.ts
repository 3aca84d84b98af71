/**
 * Damerau–Levenshtein distance (optimal string alignment: a swap of two adjacent letters counts one),
 * giving up above `max`: `max + 1` means "more than max". For reading misspelt words (medical-answers'
 * search, crisis-guard's detector) over many candidates, so the table's rows are reused.
 *
 * @example editDistance('tylenl', 'tylenol', 1) // 1
 */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const width = b.length + 1;
  if (ROWS.length < 3 * width) ROWS = new Int32Array(3 * width);
  // Three rows of the table, in turn: two back, one back, this one.
  let prev2 = 0;
  let prev = width;
  let row = 2 * width;
  for (let j = 0; j < width; j++) ROWS[prev + j] = j;
  for (let i = 1; i <= a.length; i++) {
    ROWS[row] = i;
    let best = i;
    const ai = a.charCodeAt(i - 1);
    for (let j = 1; j < width; j++) {
      const bj = b.charCodeAt(j - 1);
      let d = Math.min(ROWS[prev + j]! + 1, ROWS[row + j - 1]! + 1, ROWS[prev + j - 1]! + (ai === bj ? 0 : 1));
      if (i > 1 && j > 1 && ai === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === bj) d = Math.min(d, ROWS[prev2 + j - 2]! + 1);
      ROWS[row + j] = d;
      if (d < best) best = d;
    }
    if (best > max) return max + 1;
    const t = prev2;
    prev2 = prev;
    prev = row;
    row = t;
  }
  return ROWS[prev + b.length]!;
}

/** The table's rows, reused between calls. */
let ROWS = new Int32Array(96);
