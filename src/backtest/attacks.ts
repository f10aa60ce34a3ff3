import type { Addr, AddressBook, V6Net } from './address-book.ts';
import { near, v6In } from './address-book.ts';
import type { Rng } from './prng.ts';
import type { LoginRecord } from './record.ts';
import { COUNTRY_CODES, HOSTING, TOR_HOSTERS, TOR_NETWORKS } from './scenario-networks.ts';
import { chromeMajor, TOR_BROWSER_UA, userAgent } from './user-agents.ts';
import type { GenerateOptions, User } from './generate.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MIN = 60_000;

export interface AttackContext {
  rng: Rng;
  opts: GenerateOptions;
  users: User[];
  warmEnd: number;
  end: number;
  book: AddressBook;
  emit: (r: LoginRecord) => void;
  residential: (cc: string) => Addr[];
  hostingIn: (cc: string) => Addr[];
  hostingAbroad: (cc: string) => Addr[];
  v6Of: (asn: number, cc: string) => V6Net[];
}

/**
 * The attacks, in the labelled window only: every attacker holds the password (sprayers aside)
 * and never the victim's device id. Volumes scale with the number of users and `attackRate`.
 */
export function generateAttacks(ctx: AttackContext): void {
  const { rng: arng, opts, users, warmEnd, end, book, emit, residential, hostingIn, hostingAbroad, v6Of } = ctx;
  const scale = (opts.users / 2000) * (opts.attackRate ?? 1);
  const count = (base: number): number => Math.max(1, Math.round(base * scale));
  const labelled = (): number => warmEnd + arng.range(0.02, 0.999) * opts.days * DAY;
  const victimPool = users.filter((u) => u.logins.some((l) => l.t < warmEnd));
  const victim = (): User => arng.pick(victimPool.length > 0 ? victimPool : users);
  const primaryUa = (u: User, t: number): string => {
    const d = u.devices.find((x) => x.role === 'laptop') ?? u.devices.find((x) => x.role === 'work') ?? u.devices[0];
    return userAgent(d.browser, t);
  };
  // Attack tooling lags browser releases by a few months: stale but plausible Chrome strings.
  const toolUa = (t: number): string => {
    const v = chromeMajor(t) - arng.int(1, 6);
    return arng.chance(0.8)
      ? `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36`
      : `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36`;
  };
  const attack = (u: User, t: number, ip: string, deviceId: string | null, ua: string | null, kind: string, ok = true): void =>
    emit({ ts: t, user: u.id, ip, deviceId, userAgent: ua, passwordCorrect: ok, label: 'attack', kind });

  // Credential stuffing with a cleaned combo list: bots in data centres, scripts keep no cookies.
  const stuffing = (abroad: boolean, campaigns: number, perCampaign: number): void => {
    for (let c = 0; c < campaigns; c++) {
      const target = victim();
      const pool = abroad ? hostingAbroad(target.cc) : hostingIn(target.cc);
      if (pool.length === 0) continue;
      const bots = Array.from({ length: arng.int(3, 25) }, () => arng.pick(pool));
      let t = labelled();
      const ua = toolUa(t);
      // A combo list is usually one market's breach; its accounts share a country.
      const sameMarket = victimPool.filter((u) => u.cc === target.cc);
      for (let i = 0; i < perCampaign; i++) {
        const v = i === 0 || sameMarket.length === 0 ? target : arng.pick(sameMarket);
        t += arng.range(2_000, 90_000);
        attack(v, t, arng.pick(bots).ip, arng.chance(0.5) ? null : arng.uuid(), arng.chance(0.85) ? ua : 'python-requests/2.32.3', abroad ? 'stuffing_hosting_abroad' : 'stuffing_hosting_domestic');
      }
    }
  };
  stuffing(true, count(6), 12);
  stuffing(false, count(4), 10);

  // Account takeover through a residential proxy in the victim's own city, with the victim's
  // exact user agent (scraped from an infostealer log) and a fresh anti-detect profile.
  for (let i = 0; i < count(45); i++) {
    const v = victim();
    const local = near(residential(v.cc).filter((a) => a.ip !== v.line.ip.ip), v.home, 40);
    const others = local.filter((a) => a.asn !== v.homeAsn);
    const addr = arng.pick(others.length > 0 && arng.chance(0.7) ? others : local);
    const t = labelled();
    const dev = arng.uuid();
    attack(v, t, addr.ip, dev, primaryUa(v, t), 'residential_proxy_city');
    if (arng.chance(0.3)) attack(v, t + arng.range(1, 30) * MIN, addr.ip, dev, primaryUa(v, t), 'residential_proxy_city');
  }

  // Account checkers: one address tries many accounts in an hour.
  for (let c = 0; c < count(2); c++) {
    const src = arng.chance(0.5) ? arng.pick(residential(arng.pick(COUNTRY_CODES))) : arng.pick(book.pool(HOSTING));
    let t = labelled();
    const n = arng.int(15, 40);
    for (let i = 0; i < n; i++) {
      t += arng.range(30_000, 240_000);
      attack(victim(), t, src.ip, arng.chance(0.6) ? null : arng.uuid(), toolUa(t), 'shared_ip_many_accounts');
    }
  }

  // An anti-detect browser profile reused across accounts (same device id), each through a
  // residential proxy in that victim's country, with a plausible user agent.
  for (let c = 0; c < count(2); c++) {
    const dev = arng.uuid();
    let t = labelled();
    const ua = toolUa(t);
    const n = arng.int(10, 30);
    for (let i = 0; i < n; i++) {
      const v = victim();
      t += arng.range(2, 45) * MIN;
      attack(v, t, arng.pick(near(residential(v.cc), v.home, 150)).ip, dev, ua, 'shared_device_many_accounts');
    }
  }

  // Real-time phishing (adversary in the middle): the proxy signs in minutes after the victim
  // typed the password into the lure, forwarding the victim's user agent but not its cookie.
  for (let i = 0; i < count(40); i++) {
    const v = victim();
    const later = v.logins.filter((l) => l.t >= warmEnd && l.t < end - HOUR);
    if (later.length === 0) continue;
    const l = arng.pick(later);
    const t = l.t + arng.range(1, 12) * MIN;
    const src = arng.chance(0.6)
      ? arng.pick(arng.chance(0.5) && hostingIn(v.cc).length > 0 ? hostingIn(v.cc) : book.pool(HOSTING))
      : arng.pick(residential(v.cc));
    attack(v, t, src.ip, arng.chance(0.5) ? null : arng.uuid(), userAgent(l.device.browser, t), 'realtime_phishing');
  }

  // Tor: a small set of exits shared by everyone who uses them; Tor Browser keeps no cookies.
  const torExits = [
    ...book.pool(TOR_NETWORKS),
    ...TOR_HOSTERS.flatMap((a) => book.of(a).slice(0, 6)),
  ];
  for (let i = 0; i < count(30) && torExits.length > 0; i++) {
    const v = victim();
    const t = labelled();
    attack(v, t, arng.pick(torExits).ip, null, TOR_BROWSER_UA, 'tor');
  }

  // Low and slow from the victim's own ISP: one careful attempt per account, days apart, from a
  // residential proxy on the same network the victim uses (so the ASN and country look familiar).
  for (let i = 0; i < count(40); i++) {
    const v = victim();
    const same = book.of(v.homeAsn, v.cc).filter((a) => a.ip !== v.line.ip.ip);
    if (same.length === 0) continue;
    const t = labelled();
    // Residential proxy pools sell IPv6 exits on the big ISPs too.
    const v6 = v6Of(v.homeAsn, v.cc);
    const ip = v6.length > 0 && arng.chance(0.3) ? v6In(arng.pick(v6), arng) : arng.pick(same).ip;
    attack(v, t, ip, arng.uuid(), arng.chance(0.5) ? primaryUa(v, t) : toolUa(t), 'low_and_slow_isp');
  }

  // Password spraying: one common password against many accounts, slowly, from rotating
  // proxies; the few accounts that use it let the sprayer in.
  for (let c = 0; c < count(2); c++) {
    const pool = arng.chance(0.5) ? book.pool(HOSTING) : residential(arng.pick(COUNTRY_CODES));
    let t = labelled();
    const n = arng.int(150, 300);
    const ua = toolUa(t);
    for (let i = 0; i < n; i++) {
      t += arng.range(10_000, 120_000);
      attack(victim(), t, arng.pick(pool).ip, null, ua, 'password_spraying', arng.chance(0.04));
    }
  }

}
