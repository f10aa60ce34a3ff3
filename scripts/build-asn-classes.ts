/**
 * Rebuild src/risk/asn-classes.json: autonomous system number → connection type.
 *
 *   npx tsx scripts/build-asn-classes.ts [path/to/@ip-location-db/asn]
 *
 * Two sources, both offline:
 * 1. CURATED below: operators whose AS numbers are public knowledge (their own network pages,
 *    RIR whois and PeeringDB records name them), checked against the organisation name the
 *    shipped CSV gives for that AS. This is where the decisions that matter live (cloud
 *    providers, commercial VPN operators, predominantly-mobile carriers).
 * 2. Keywords in the organisation names of @ip-location-db/asn (RouteViews + DB-IP, CC BY 4.0):
 *    "hosting", "cloud", "datacenter", "vps", "server" → hosting; "vpn" → vpn; "mobile",
 *    "wireless", "cellular" → mobile. Coarse, but it reaches the long tail of small hosters that
 *    credential-stuffing rents, which no hand list keeps up with.
 * An AS in neither is `residential` at scoring time (an ISP; the data cannot tell business lines).
 * Mixed fixed+mobile carriers (Deutsche Telekom, Orange, Vodafone DE…) are deliberately NOT
 * mobile: treating their whole AS as one network would make a stranger on the victim's own ISP
 * look familiar; their phones are handled by the known-device discount instead.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type Kind = 'hosting' | 'vpn' | 'proxy' | 'mobile';

const CURATED: Record<Kind, Record<number, string>> = {
  hosting: {
    16509: 'Amazon AWS', 14618: 'Amazon AWS', 8987: 'Amazon AWS EU', 396982: 'Google Cloud',
    8075: 'Microsoft Azure', 14061: 'DigitalOcean', 16276: 'OVH', 24940: 'Hetzner', 213230: 'Hetzner Cloud',
    63949: 'Akamai Connected Cloud (Linode)', 20473: 'Vultr (The Constant Company)', 51167: 'Contabo',
    45102: 'Alibaba Cloud', 37963: 'Alibaba Cloud CN', 132203: 'Tencent Cloud', 45090: 'Tencent Cloud',
    31898: 'Oracle Cloud', 12876: 'Scaleway', 60781: 'Leaseweb NL', 28753: 'Leaseweb DE', 30633: 'Leaseweb US',
    53667: 'FranTech / BuyVM', 46606: 'Unified Layer', 26496: 'GoDaddy', 32244: 'Liquid Web', 19318: 'Interserver',
    36352: 'HostPapa / ColoCrossing', 53755: 'Input Output Flood', 200350: 'Yandex.Cloud', 214940: 'KPROHOST',
    62240: 'Clouvider', 397423: 'Tier.Net', 8100: 'QuadraNet', 40021: 'Contabo US', 35916: 'Multacom',
    202425: 'IP Volume', 49981: 'WorldStream', 197540: 'netcup', 47583: 'Hostinger', 201814: 'MEVSPACE',
    210644: 'AEZA', 399629: 'BL Networks', 7203: 'Leaseweb US (legacy)', 23470: 'ReliableSite',
  },
  vpn: {
    9009: 'M247 (hosts most consumer VPN exits)', 60068: 'Datacamp / CDN77 (VPN exits)', 212238: 'Datacamp',
    136787: 'PacketHub (NordVPN)', 147049: 'PacketHub', 141039: 'PacketHub', 209103: 'Proton VPN', 62371: 'Proton',
    39351: '31173 Services (Mullvad)', 51852: 'Private Layer', 206092: 'IPXO / VPN exits',
  },
  proxy: {
    13335: 'Cloudflare (WARP, Workers egress)', 54113: 'Fastly (iCloud Private Relay egress)',
  },
  mobile: {
    21928: 'T-Mobile US', 6167: 'Verizon Wireless', 22394: 'Verizon Wireless (Cellco)', 20057: 'AT&T Mobility',
    25135: 'Vodafone UK', 12576: 'EE', 35228: 'O2 UK', 206067: 'Three UK', 6805: 'Telefonica DE (O2)',
    51207: 'Free Mobile', 55836: 'Reliance Jio', 45609: 'Bharti Airtel mobile', 38266: 'Vodafone Idea',
    9808: 'China Mobile', 56040: 'China Mobile', 56041: 'China Mobile', 56046: 'China Mobile', 24445: 'China Mobile',
    45271: 'Vodafone Idea', 26599: 'TIM Brasil', 27699: 'Vivo (Telefonica Brasil)', 8151: 'Telcel (Uninet)',
    21575: 'Entel', 1257: 'Tele2 SE', 16135: 'Turkcell', 31334: 'Vodafone Kabel', 12430: 'Vodafone ES',
  },
};

const KEYWORDS: [Kind, RegExp][] = [
  ['vpn', /\bvpn\b/i],
  ['hosting', /\b(hosting|webhost|cloud|data ?cent(er|re)s?|datacenter|vps|servers?|colo(cation)?|dedicated|compute)\b/i],
  ['mobile', /\b(mobile|mobil|wireless|cellular|movil|móvil)\b/i],
];

const dir = process.argv[2] ?? dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json'));
const orgs = new Map<number, string>();
for (const f of ['asn-ipv4-num.csv', 'asn-ipv6-num.csv']) {
  for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
    const parts = line.split(',');
    if (parts.length < 4) continue;
    const asn = Number(parts[2]);
    if (!orgs.has(asn)) orgs.set(asn, parts.slice(3).join(',').replace(/^"|"$/g, ''));
  }
}

const classes: Record<string, Kind> = {};
const counts: Record<string, number> = {};
for (const [asn, org] of orgs) {
  const kw = KEYWORDS.find(([, re]) => re.test(org));
  if (kw) classes[asn] = kw[0];
}
// Curated entries win over keywords.
for (const [kind, list] of Object.entries(CURATED) as [Kind, Record<number, string>][]) {
  for (const asn of Object.keys(list)) classes[asn] = kind;
}
for (const k of Object.values(classes)) counts[k] = (counts[k] ?? 0) + 1;

const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
const out = {
  provenance:
    'Built by scripts/build-asn-classes.ts from a curated operator list and organisation-name keywords over ' +
    `@ip-location-db/asn ${pkg.version} (RouteViews + DB-IP + NRO, CC BY 4.0). Unlisted AS = residential.`,
  counts,
  classes,
};
const target = join(import.meta.dirname, '..', 'src', 'risk', 'asn-classes.json');
writeFileSync(target, `${JSON.stringify(out)}\n`);
console.log(`wrote ${target}:`, counts);
