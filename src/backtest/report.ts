import type { BacktestSummary, PolicySummary } from './runner.ts';

function table(head: string[], rows: Array<Array<string | number | null>>): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (c === null ? '–' : String(c))))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(cells[0]), w.map((n) => '-'.repeat(n)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const p = (v: number | null): string => (v === null ? '–' : `${v.toFixed(2)} %`);

function policyBlock(s: PolicySummary): string {
  const out: string[] = [];
  const d = s.decisions;
  out.push(`policy ${s.policy}: ${s.scored} scored attempts — allow ${d.allow}, step_up ${d.step_up}, deny ${d.deny} (step-up ${p(s.stepUpRate)}, deny ${p(s.denyRate)})`);
  if (s.labelled) {
    const l = s.labelled;
    out.push('');
    out.push(table(['label', 'allow', 'step_up', 'deny'], [
      ['attack', l.attack.allow, l.attack.step_up, l.attack.deny],
      ['benign', l.benign.allow, l.benign.step_up, l.benign.deny],
    ]));
    out.push(`caught ${p(l.caughtPct)} of attacks; benign stepped up or denied ${p(l.benignStepUpPct)} (denied ${p(l.benignDenyPct)})`);
    out.push('');
    out.push(table(
      ['kind', 'label', 'n', 'allow', 'step_up', 'deny', 'caught/stepped-up'],
      s.kinds.map((k) => [k.kind, k.label, k.n, k.allow, k.step_up, k.deny, p(k.flaggedPct)]),
    ));
  }
  const reasons = Object.entries(s.reasons);
  if (reasons.length > 0) {
    out.push('');
    out.push(table(['reason', 'total', 'attack', 'benign', 'unlabelled'], reasons.map(([r, c]) => [r, c.total, c.attack, c.benign, c.unlabelled])));
  }
  return out.join('\n');
}

/** The summary as a person reads it in a terminal. */
export function formatSummary(s: BacktestSummary): string {
  const out: string[] = [];
  out.push(`input: ${s.input.lines} lines, ${s.input.records} records, ${s.input.malformed} malformed (skipped)` + (s.input.outOfOrder ? `, ${s.input.outOfOrder} out of time order` : ''));
  for (const m of s.input.malformedSamples.slice(0, 10)) out.push(`  line ${m.line}: ${m.error}`);
  out.push(`attempts: ${s.attempts.total} (${s.attempts.scored} scored, ${s.attempts.wrongPassword} wrong password recorded as failures)`);
  if (s.fidelity) out.push(`replay fidelity: ${s.fidelity.agree}/${s.fidelity.compared} decisions as recorded live (${s.fidelity.disagree} differ)`);
  out.push(`throughput: ${s.perMinute.toLocaleString('en-US')} records/min (${(s.elapsedMs / 1000).toFixed(1)} s)`);
  out.push('');
  out.push(policyBlock(s.primary));
  if (s.compare) {
    const c = s.compare;
    out.push('');
    out.push(`=== compared with ${c.policy} ===`);
    out.push(policyBlock(c));
    out.push('');
    out.push(`${c.changed} attempts change decision`);
    if (c.changed > 0) {
      out.push(table(['change', 'n'], Object.entries(c.transitions).sort((a, b) => b[1] - a[1])));
      const why = [...new Set([...Object.keys(c.reasonsGained), ...Object.keys(c.reasonsLost)])];
      if (why.length) out.push(table(['reason (on changed attempts)', 'gained', 'lost'], why.map((r) => [r, c.reasonsGained[r] ?? 0, c.reasonsLost[r] ?? 0])));
      for (const x of c.samples.slice(0, 10)) {
        out.push(`  line ${x.line} ${x.user} ${x.label ?? ''} ${x.kind ?? ''}: ${x.from.decision} (${x.from.reasons.join(' ') || '—'}) -> ${x.to.decision} (${x.to.reasons.join(' ') || '—'})`);
      }
    }
  }
  return out.join('\n');
}
