import { haversineKm, type Geo } from '../risk/geo.ts';
import { AddressBook, near, sampleV6, v6In, type Addr, type V6Net } from './address-book.ts';
import { Rng } from './prng.ts';
import { generateAttacks } from './attacks.ts';
import { CONSUMER_VPN, CORPORATE_EGRESS, COUNTRIES, COUNTRY_CODES, DESTINATIONS, HOSTING, TOR_HOSTERS, TOR_NETWORKS, tzOf } from './scenario-networks.ts';
import type { LoginRecord } from './record.ts';
import {
  newBrowser,
  pickDesktopBrowser,
  pickPhoneBrowser,
  userAgent,
  type BrowserModel,
} from './user-agents.ts';

/**
 * A seeded generator of realistic labelled login traffic for back-testing risk policies.
 *
 * Benign people log in on their own devices at the hours people do, from home lines whose
 * address the ISP changes now and then, offices whose NAT dozens of colleagues share, corporate
 * VPN egresses, phones behind carrier-grade NAT, and abroad on trips at speeds planes and trains
 * reach (with phones roaming home-routed, so they still look at home). They get new phones and
 * browsers, their browsers update, and they mistype passwords.
 *
 * Attackers hold the right password (sprayers excepted) and never the victim's device cookie.
 *
 * Every address is a real address inside the real announced range of a real network, placed by
 * the same GeoIP database the risk engine uses. A warm-up period without labels comes first so
 * the accounts have the history a live system would have; only the labelled days are scored.
 */

export interface GenerateOptions {
  seed: number;
  users: number;
  /** Labelled days. */
  days: number;
  /** Unlabelled history before the labelled days (replayed, not scored). */
  warmupDays: number;
  /** First instant of the warm-up (UTC midnight). */
  start: number;
  geo: Geo;
  /** Attack volume relative to the default mix (1 = default). */
  attackRate?: number;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MIN = 60_000;

export const BENIGN_KINDS = [
  'home', 'home_new_ip', 'office_nat', 'corporate_vpn', 'mobile_cgnat', 'consumer_vpn', 'new_phone', 'new_browser',
  'cookie_cleared', 'browser_update', 'trip_domestic', 'trip_abroad', 'roaming', 'typo', 'family_shared_device',
  'borrowed_device', 'shared_workstation', 'new_account',
] as const;
export const ATTACK_KINDS = [
  'stuffing_hosting_abroad', 'stuffing_hosting_domestic', 'residential_proxy_city', 'shared_ip_many_accounts',
  'shared_device_many_accounts', 'realtime_phishing', 'tor', 'low_and_slow_isp', 'password_spraying',
] as const;

export type DeviceRole = 'laptop' | 'phone' | 'tablet' | 'work';

export interface Device {
  role: DeviceRole;
  id: string;
  browser: BrowserModel;
  /** Active from this instant (a device bought during the window) until `until`. */
  from: number;
  until: number;
  /** Logins per day on it. */
  rate: number;
  /** Cookie-clearing browser: a new device id most logins. */
  clearsCookies: boolean;
  /** Kind for its first labelled login, when it is new during the window. */
  newKind?: 'new_phone' | 'new_browser';
  lastUa?: string;
  seen: boolean;
  /** A household's shared tablet or computer: one device id, two accounts. */
  shared?: boolean;
  /** An office's shared workstation: never leaves the office. */
  workstation?: boolean;
}

export interface Org {
  cc: string;
  point: Addr;
  /** Office NAT addresses (one or two lines), or the corporate egress addresses. */
  egress: Addr[];
  vpn: boolean;
  /** Shared workstations (a hospital ward, a shop counter): one device id, many colleagues. */
  workstations: Array<{ id: string; browser: BrowserModel }>;
}

export interface Trip {
  depart: number;
  arrive: number;
  returnDepart: number;
  returnArrive: number;
  abroad: boolean;
  hotel: Addr;
  cafes: Addr[];
  tz: number;
}

export interface User {
  id: string;
  cc: string;
  tz: number;
  homeAsn: number;
  home: Addr;
  /** The home line; partners in one household share it (and its address changes). */
  line: { ip: Addr; owner: User | null; v6: V6Net | null; v6Choices: V6Net[] };
  homeChoices: Addr[];
  carrier: number;
  org: Org | null;
  vpnUser: boolean;
  devices: Device[];
  trips: Trip[];
  /** Benign correct-password logins: time, device index. */
  logins: Array<{ t: number; device: Device; ip: string }>;
  /** Home-line addresses already used, so the first login from a reassigned one is told apart. */
  homeIps: Set<string>;
  /** When the account was created (an account opened during the window has no history). */
  joinAt: number;
  started: boolean;
}

export interface GenerateResult {
  records: LoginRecord[];
  stats: { users: number; benign: number; attack: number; unlabelled: number; byKind: Record<string, number> };
}


export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const root = new Rng(opts.seed);
  const poolRng = root.fork('addresses');
  const allAsns = new Set<number>([...HOSTING, ...CORPORATE_EGRESS, ...CONSUMER_VPN, ...TOR_NETWORKS, ...TOR_HOSTERS]);
  for (const c of Object.values(COUNTRIES)) {
    for (const [a] of c.residential) allAsns.add(a);
    for (const [a] of c.mobile) allAsns.add(a);
    for (const a of c.business) allAsns.add(a);
  }
  const perAsn = Math.max(200, Math.min(1200, Math.round(opts.users / 6)));
  const book = await AddressBook.build(poolRng, opts.geo, [...allAsns].sort((a, b) => a - b), perAsn);

  // IPv6: households get a /64 of their ISP; phones a fresh /64 of their carrier per session.
  const v6Asns = new Set<number>();
  for (const c of Object.values(COUNTRIES)) for (const [a] of [...c.residential, ...c.mobile]) v6Asns.add(a);
  const v6Nets = await sampleV6(root.fork('addresses-v6'), opts.geo, [...v6Asns].sort((a, b) => a - b), Math.max(100, Math.round(perAsn / 2)));
  const v6Of = (asn: number, cc: string): V6Net[] => (v6Nets.get(asn) ?? []).filter((n) => n.cc === cc);
  const nearV6 = (list: V6Net[], p: { lat: number; lon: number }, km: number): V6Net[] => {
    const scored = list.map((n) => ({ n, d: haversineKm(n, p) })).sort((a, b) => a.d - b.d);
    const inside = scored.filter((x) => x.d <= km).map((x) => x.n);
    return inside.length > 0 ? inside : scored.slice(0, 1).map((x) => x.n);
  };

  const residential = (cc: string): Addr[] => book.pool(COUNTRIES[cc].residential.map(([a]) => a), cc);
  const hostingIn = (cc: string): Addr[] => book.pool(HOSTING, cc);
  const hostingAbroad = (cc: string): Addr[] => book.pool(HOSTING).filter((a) => a.cc !== cc);

  // Carrier-grade NAT: a carrier's subscribers share a small set of public addresses.
  const cgnat = new Map<string, Addr[]>();
  for (const cc of COUNTRY_CODES) {
    for (const [asn] of COUNTRIES[cc].mobile) {
      const all = book.of(asn, cc);
      const shared: Addr[] = [];
      const n = Math.max(8, Math.min(all.length, Math.round(opts.users / 40)));
      for (let i = 0; i < n && all.length > 0; i++) shared.push(poolRng.pick(all));
      cgnat.set(`${cc}:${asn}`, shared);
    }
  }

  const warmEnd = opts.start + opts.warmupDays * DAY;
  const end = warmEnd + opts.days * DAY;
  const records: LoginRecord[] = [];
  const emit = (r: LoginRecord): void => {
    if (r.label !== undefined && r.ts < warmEnd) delete r.label;
    records.push(r);
  };

  // ---- people -------------------------------------------------------------------------------
  const urng = root.fork('users');
  const users: User[] = [];
  for (let i = 0; i < opts.users; i++) {
    const cc = urng.weighted(COUNTRY_CODES, COUNTRY_CODES.map((c) => COUNTRIES[c].weight));
    const spec = COUNTRIES[cc];
    const homeAsn = urng.weighted(spec.residential.map(([a]) => a), spec.residential.map(([, w]) => w));
    let pool = book.of(homeAsn, cc);
    if (pool.length === 0) pool = residential(cc);
    const home = urng.pick(pool);
    const homeChoices = near(pool.filter((a) => a.asn === home.asn), home, 40);
    const carrier = urng.weighted(spec.mobile.map(([a]) => a), spec.mobile.map(([, w]) => w));
    const u: User = {
      id: `u${String(i).padStart(6, '0')}@${cc.toLowerCase()}.example.com`,
      cc,
      tz: tzOf(cc, home.lon),
      homeAsn: home.asn,
      home,
      line: { ip: home, owner: null, v6: null, v6Choices: [] },
      homeChoices,
      carrier,
      org: null,
      vpnUser: urng.chance(0.03),
      devices: [],
      trips: [],
      logins: [],
      homeIps: new Set(),
      joinAt: opts.start,
      started: false,
    };
    if (urng.chance(0.03)) u.joinAt = warmEnd + urng.range(0, Math.max(1, opts.days - 2)) * DAY;
    const dev = (role: DeviceRole, browser: BrowserModel, rate: number, from = opts.start, until = end): Device => ({
      role, id: urng.uuid(), browser, from, until, rate, clearsCookies: false, seen: false,
    });
    if (urng.chance(0.9)) u.devices.push(dev('phone', newBrowser(urng, pickPhoneBrowser(urng, cc)), urng.range(0.25, 0.9)));
    if (urng.chance(0.8)) {
      const d = dev('laptop', newBrowser(urng, pickDesktopBrowser(urng, cc)), urng.range(0.15, 0.6));
      d.clearsCookies = urng.chance(0.01);
      u.devices.push(d);
    }
    if (urng.chance(0.15)) u.devices.push(dev('tablet', newBrowser(urng, urng.chance(0.6) ? 'safari-ipad' : 'chrome-android'), urng.range(0.05, 0.25)));
    if (u.devices.length === 0) u.devices.push(dev('phone', newBrowser(urng, pickPhoneBrowser(urng, cc)), 0.5));
    // Life events inside the labelled window: a new phone, a second browser.
    const phone = u.devices.find((d) => d.role === 'phone');
    if (phone && urng.chance(0.04)) {
      const at = warmEnd + urng.range(0, opts.days) * DAY;
      phone.until = at + urng.range(0, 2) * DAY; // the old one lingers a day or two
      const np = dev('phone', newBrowser(urng, urng.chance(0.7) ? phone.browser.kind : pickPhoneBrowser(urng, cc)), phone.rate, at);
      np.newKind = 'new_phone';
      u.devices.push(np);
    }
    const laptop = u.devices.find((d) => d.role === 'laptop');
    if (laptop && urng.chance(0.03)) {
      const at = warmEnd + urng.range(0, opts.days) * DAY;
      const nb = dev('laptop', newBrowser(urng, pickDesktopBrowser(urng, cc)), laptop.rate / 2, at);
      nb.newKind = 'new_browser';
      laptop.rate /= 2;
      u.devices.push(nb);
    }
    users.push(u);
  }

  // ---- households: partners share the home line, and some share a tablet or family computer
  const hrng = root.fork('households');
  for (const u of users) u.line.owner = u;
  for (const cc of COUNTRY_CODES) {
    const here = users.filter((u) => u.cc === cc && hrng.chance(0.16));
    for (let i = 0; i + 1 < here.length; i += 2) {
      const [a, b] = [here[i], here[i + 1]];
      b.home = a.home;
      b.homeAsn = a.homeAsn;
      b.homeChoices = a.homeChoices;
      b.tz = a.tz;
      b.line = a.line;
      b.homeIps = a.homeIps;
      if (hrng.chance(0.5)) {
        const shared: Device = {
          role: 'tablet', id: hrng.uuid(), browser: newBrowser(hrng, hrng.chance(0.5) ? 'safari-ipad' : pickDesktopBrowser(hrng, cc)),
          from: opts.start, until: end, rate: hrng.range(0.05, 0.2), clearsCookies: false, seen: false, shared: true,
        };
        a.devices.push(shared);
        b.devices.push({ ...shared, seen: false });
      }
    }
  }

  const vrng = root.fork('v6-lines');
  for (const u of users) {
    if (u.line.owner !== u || !vrng.chance(COUNTRIES[u.cc].v6Home)) continue;
    const nets = v6Of(u.homeAsn, u.cc);
    if (nets.length === 0) continue;
    u.line.v6Choices = nearV6(nets, u.home, 60);
    u.line.v6 = vrng.pick(u.line.v6Choices.slice(0, 5));
  }

  // ---- workplaces ---------------------------------------------------------------------------
  const orng = root.fork('orgs');
  for (const cc of COUNTRY_CODES) {
    const workers = users.filter((u) => u.cc === cc && orng.chance(0.45));
    if (workers.length === 0) continue;
    const business = book.pool(COUNTRIES[cc].business, cc);
    const orgs: Org[] = [];
    const nOrgs = Math.max(1, Math.round(workers.length / 30));
    for (let k = 0; k < nOrgs && business.length > 0; k++) {
      const point = orng.pick(business);
      const vpn = orng.chance(0.3);
      let egress: Addr[];
      if (vpn) {
        const edge = book.pool(CORPORATE_EGRESS);
        const local = edge.filter((a) => a.cc === cc);
        const src = local.length > 0 && orng.chance(0.6) ? local : edge.length > 0 ? edge : hostingIn(cc);
        // The service sends a site to its nearest node: a few addresses of one data centre.
        const node = orng.pick(src);
        const sameNode = near(src.filter((a) => a.cc === node.cc && a.asn === node.asn), node, 30);
        egress = [node, orng.pick(sameNode), orng.pick(sameNode)];
      } else {
        const lines = near(business.filter((a) => a.asn === point.asn), point, 25);
        egress = orng.chance(0.3) ? [point, orng.pick(lines)] : [point];
      }
      const workstations = !vpn && orng.chance(0.25)
        ? Array.from({ length: orng.int(2, 5) }, () => ({ id: orng.uuid(), browser: newBrowser(orng, orng.chance(0.8) ? 'edge-win' : 'chrome-win', true) }))
        : [];
      orgs.push({ cc, point, egress, vpn, workstations });
    }
    for (const u of workers) {
      let best: Org | null = null;
      let bestKm = Infinity;
      for (const o of orgs) {
        const km = haversineKm(o.point, u.home);
        if (km < bestKm) {
          bestKm = km;
          best = o;
        }
      }
      // Nobody commutes 300 km daily; a far-away employer means working remotely over its VPN.
      if (!best) continue;
      if (bestKm > 120 && !best.vpn) continue;
      u.org = best;
      const managed = newBrowser(orng, orng.chance(0.75) ? 'edge-win' : orng.chance(0.5) ? 'chrome-win' : 'chrome-mac', true);
      u.devices.push({ role: 'work', id: orng.uuid(), browser: managed, from: opts.start, until: end, rate: 0.85, clearsCookies: false, seen: false });
      if (best.workstations.length > 0 && orng.chance(0.6)) {
        for (const w of best.workstations.slice(0, orng.int(1, 2))) {
          u.devices.push({ role: 'work', id: w.id, browser: w.browser, from: opts.start, until: end, rate: orng.range(0.1, 0.4), clearsCookies: false, seen: false, workstation: true });
        }
      }
    }
  }

  // ---- trips --------------------------------------------------------------------------------
  const trng = root.fork('trips');
  for (const u of users) {
    if (!trng.chance(0.12 * (opts.days / 30))) continue;
    const abroad = trng.chance(0.6);
    const destCc = abroad ? trng.pick(DESTINATIONS.filter((c) => c !== u.cc)) : u.cc;
    const pool = residential(destCc).concat(hostingIn(destCc));
    const candidates = abroad ? pool : pool.filter((a) => haversineKm(a, u.home) > 150);
    if (candidates.length === 0) continue;
    const hotel = trng.pick(candidates);
    const cafes = near(residential(destCc), hotel, 30).slice(0, 6);
    const km = haversineKm(u.home, hotel);
    const hours = abroad && km > 700 ? km / 750 + 2.5 + trng.range(0, 2) : km / 110 + 0.5 + trng.range(0, 1);
    const firstDay = Math.floor(opts.warmupDays + trng.range(0, opts.days - 2));
    const depart = opts.start + firstDay * DAY + (trng.range(6, 16) - u.tz) * HOUR;
    const stay = trng.int(2, 10) * DAY;
    const returnDepart = depart + stay + trng.range(-3, 3) * HOUR;
    u.trips.push({
      depart,
      arrive: depart + hours * HOUR,
      returnDepart,
      returnArrive: returnDepart + hours * HOUR,
      abroad,
      hotel,
      cafes: cafes.length > 0 ? cafes : [hotel],
      tz: tzOf(destCc, hotel.lon),
    });
  }

  // ---- benign days ---------------------------------------------------------------------------
  const brng = root.fork('benign');
  const totalDays = opts.warmupDays + opts.days;
  for (const u of users) {
    const spec = COUNTRIES[u.cc];
    for (let day = 0; day < totalDays; day++) {
      const dayStart = opts.start + day * DAY;
      if (u.line.owner === u && brng.chance(spec.homeIpChurn) && u.homeChoices.length > 0) {
        // Most reassignments stay in the same region; GeoIP sometimes puts the new one elsewhere.
        const any = book.of(u.homeAsn, u.cc);
        // A reconnect renumbers both families (German lines notably change prefix with the address).
        if (u.line.v6 && u.line.v6Choices.length > 1 && brng.chance(0.5)) u.line.v6 = brng.pick(u.line.v6Choices.slice(0, 8));
        u.line.ip = brng.chance(0.85) || any.length === 0 ? brng.pick(u.homeChoices) : brng.pick(any);
      }
      const weekday = new Date(dayStart + 12 * HOUR).getUTCDay();
      const workday = weekday >= 1 && weekday <= 5 && !brng.chance(0.06);
      for (const d of u.devices) {
        if (d.role === 'work' && !workday) continue;
        if (dayStart + DAY < d.from || dayStart > d.until) continue;
        let rate = d.rate;
        if (d.role === 'laptop' && !workday) rate *= 1.6;
        const n = brng.poisson(rate);
        for (let k = 0; k < n; k++) {
          const local = localHour(brng, d.role, workday);
          const trip = u.trips.find((t) => dayStart - DAY < t.returnArrive && dayStart + DAY > t.depart);
          const tz = trip && dayStart >= trip.arrive - DAY && dayStart <= trip.returnDepart ? trip.tz : u.tz;
          const t = dayStart + (local - tz) * HOUR + brng.range(0, 59) * MIN + brng.range(0, 59_000);
          if (t < d.from || t > d.until || t >= end || t < u.joinAt) continue;
          benignLogin(u, d, t, workday, local);
        }
      }
    }
  }

  function benignLogin(u: User, d: Device, t: number, workday: boolean, local: number): void {
    const cgnatPool = cgnat.get(`${u.cc}:${u.carrier}`) ?? [];
    let addr: Addr | null = null;
    let kind = 'home';
    const trip = u.trips.find((x) => t >= x.depart && t < x.returnArrive);
    if (trip && ((t >= trip.depart && t < trip.arrive) || t >= trip.returnDepart)) return; // in transit
    if (trip) {
      if (d.role === 'tablet' && brng.chance(0.7)) return; // left at home
      if (d.workstation) return;
      if (d.role === 'work' && u.org?.vpn) {
        addr = brng.pick(u.org.egress);
        kind = 'corporate_vpn';
      } else if (d.role === 'phone' && brng.chance(trip.abroad ? 0.5 : 0.7)) {
        // Roaming is home-routed: the phone still egresses from its home carrier's gateway.
        addr = cgnatPool.length > 0 ? brng.pick(cgnatPool) : trip.hotel;
        kind = trip.abroad ? 'roaming' : 'mobile_cgnat';
      } else {
        addr = brng.chance(0.75) ? trip.hotel : brng.pick(trip.cafes);
        kind = trip.abroad ? 'trip_abroad' : 'trip_domestic';
      }
    } else if (d.workstation) {
      if (!workday || local < 7 || local >= 19 || !u.org) return;
      addr = brng.pick(u.org.egress);
      kind = 'shared_workstation';
    } else if (d.role === 'work') {
      const atOffice = workday && local >= 8 && local < 18 && brng.chance(0.8);
      if (u.org?.vpn) {
        addr = brng.pick(u.org.egress);
        kind = 'corporate_vpn';
      } else if (atOffice && u.org) {
        addr = brng.pick(u.org.egress);
        kind = 'office_nat';
      } else {
        addr = u.line.ip;
      }
    } else if (d.role === 'phone') {
      const away = local >= 8 && local < 19 ? 0.65 : 0.2;
      if (workday && u.org && !u.org.vpn && local >= 9 && local < 17 && brng.chance(0.35)) {
        addr = brng.pick(u.org.egress);
        kind = 'office_nat';
      } else if (brng.chance(away) && cgnatPool.length > 0) {
        addr = brng.pick(cgnatPool);
        kind = 'mobile_cgnat';
      } else addr = u.line.ip;
    } else {
      addr = u.line.ip;
    }
    if (kind === 'home' && d.role !== 'work' && u.vpnUser && brng.chance(0.7)) {
      const exits = book.pool(CONSUMER_VPN);
      const local = exits.filter((a) => a.cc === u.cc);
      addr = brng.pick(local.length > 0 && brng.chance(0.7) ? local : exits);
      kind = 'consumer_vpn';
    }
    let ip = addr.ip;
    let lineKey = addr.ip;
    if (addr === u.line.ip && u.line.v6) {
      // Dual stack: the browser prefers IPv6; privacy extensions pick a new interface id daily.
      const day = Math.floor((t - opts.start) / DAY);
      ip = v6In(u.line.v6, new Rng(`${d.id}:${day}`));
      lineKey = `v6:${u.line.v6.top}`;
    } else if (kind === 'mobile_cgnat' || kind === 'roaming') {
      const nets = v6Of(u.carrier, u.cc);
      if (nets.length > 0 && brng.chance(COUNTRIES[u.cc].v6Mobile)) ip = v6In(brng.pick(nets), brng);
    }
    if (kind === 'home' && d.shared) kind = 'family_shared_device';
    if (kind === 'home') {
      if (u.homeIps.size > 0 && !u.homeIps.has(lineKey)) kind = 'home_new_ip';
      u.homeIps.add(lineKey);
    }
    let deviceId: string | null = d.id;
    if (d.clearsCookies && d.seen && brng.chance(0.6)) {
      d.id = brng.uuid();
      deviceId = d.id;
      kind = 'cookie_cleared';
    }
    const ua = userAgent(d.browser, t);
    if (!u.started && u.joinAt > opts.start) kind = 'new_account';
    else if (d.newKind && !d.seen) kind = d.newKind;
    else if (d.lastUa !== undefined && d.lastUa !== ua && kind !== 'cookie_cleared') kind = 'browser_update';
    d.lastUa = ua;
    d.seen = true;
    u.started = true;
    // Typos: a wrong password a few seconds before the right one, same device and network.
    if (brng.chance(0.03)) {
      const typos = brng.chance(0.15) ? 2 : 1;
      for (let i = typos; i >= 1; i--) {
        emit({ ts: t - i * brng.range(4_000, 25_000), user: u.id, ip, deviceId, userAgent: ua, passwordCorrect: false, label: 'benign', kind: 'typo' });
      }
    }
    emit({ ts: t, user: u.id, ip, deviceId, userAgent: ua, passwordCorrect: true, label: 'benign', kind });
    u.logins.push({ t, device: d, ip });
  }

  // A friend's or relative's computer, now and then: a device and a home line the account has
  // never used, in the same town, with that computer's own browser.
  const frng = root.fork('borrowed');
  for (const u of users) {
    if (!frng.chance(0.05 * (opts.days / 30))) continue;
    const friend = near(residential(u.cc).filter((a) => a.ip !== u.line.ip.ip), u.home, 30);
    const addr = frng.pick(friend.slice(0, 8));
    const browser = newBrowser(frng, pickDesktopBrowser(frng, u.cc));
    const dev = frng.chance(0.15) ? null : frng.uuid();
    const day = Math.floor(opts.warmupDays + frng.range(0, opts.days));
    let t = opts.start + day * DAY + (localHour(frng, 'laptop', false) - u.tz) * HOUR + frng.range(0, 59) * MIN;
    if (t >= end || t < u.joinAt || u.trips.some((x) => t >= x.depart && t < x.returnArrive)) continue;
    for (let k = frng.chance(0.3) ? 2 : 1; k > 0; k--) {
      emit({ ts: t, user: u.id, ip: addr.ip, deviceId: dev, userAgent: userAgent(browser, t), passwordCorrect: true, label: 'benign', kind: 'borrowed_device' });
      t += frng.range(20, 180) * MIN;
    }
  }

  generateAttacks({
    rng: root.fork('attacks'), opts, users, warmEnd, end, book, emit,
    residential, hostingIn, hostingAbroad, v6Of,
  });

  records.sort((a, b) => a.ts - b.ts);
  const kept = records.filter((r) => r.ts >= opts.start && r.ts < end);
  const byKind: Record<string, number> = {};
  let benign = 0;
  let attackN = 0;
  let unlabelled = 0;
  for (const r of kept) {
    if (r.label === 'benign') benign++;
    else if (r.label === 'attack') attackN++;
    else unlabelled++;
    if (r.label && r.kind) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
  }
  return { records: kept, stats: { users: users.length, benign, attack: attackN, unlabelled, byKind } };
}

/** Local hour of a login by device role: people sign in mornings and evenings, at work by day. */
function localHour(rng: Rng, role: DeviceRole, workday: boolean): number {
  if (role === 'work') return rng.weighted([7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 19, 21], [4, 22, 20, 8, 5, 12, 7, 5, 4, 3, 3, 2]);
  const hours = [0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
  const weights = workday
    ? [2, 1, 1, 4, 8, 7, 4, 3, 3, 5, 4, 3, 3, 4, 5, 7, 9, 10, 10, 8, 4]
    : [3, 2, 1, 1, 2, 4, 6, 7, 7, 7, 6, 6, 6, 6, 6, 7, 8, 9, 9, 8, 5];
  return rng.weighted(hours, weights);
}
