/** What a flow may show of a code's destination: enough to recognise it, not to learn it. */
export function maskDestination(channel: 'sms' | 'email', to: string): string {
  if (channel === 'sms') return to.length <= 4 ? '••••' : `${'•'.repeat(Math.max(0, to.length - 4))}${to.slice(-4)}`;
  const at = to.lastIndexOf('@');
  if (at < 1) return '•••';
  const [local, domain] = [to.slice(0, at), to.slice(at + 1)];
  return `${local[0]}${'•'.repeat(Math.max(1, Math.min(local.length - 1, 6)))}@${domain}`;
}
