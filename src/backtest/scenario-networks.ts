/**
 * The real networks the evaluation set draws its addresses from: per country the incumbents,
 * cable operators and mobile carriers (ASN → share of customers), and the cloud, security-edge,
 * VPN and Tor networks. Only ASNs: the addresses come from their announced ranges at run time.
 */

export type Weighted = ReadonlyArray<readonly [number, number]>;

export interface CountrySpec {
  weight: number;
  tz: number;
  residential: Weighted;
  mobile: Weighted;
  /** Lines offices buy (business DSL/fibre from the incumbents, carrier ethernet). */
  business: readonly number[];
  /** How often a home line gets a new address, per day. */
  homeIpChurn: number;
  /** Share of home lines with IPv6 (browsers then prefer it) and of phone sessions on IPv6. */
  v6Home: number;
  v6Mobile: number;
}

// Real networks per country (ASN → share of customers).
export const COUNTRIES: Record<string, CountrySpec> = {
  DE: { weight: 24, tz: 1, residential: [[3320, 45], [3209, 25], [6805, 12], [8881, 12], [8422, 3]], mobile: [[3320, 40], [3209, 30], [6805, 30]], business: [3320, 8881, 8220, 3209], homeIpChurn: 0.25, v6Home: 0.6, v6Mobile: 0.5 },
  GB: { weight: 15, tz: 0, residential: [[2856, 35], [5607, 25], [5089, 25], [35228, 5]], mobile: [[35228, 35], [206067, 25], [25135, 25], [2856, 15]], business: [2856, 8220, 5089], homeIpChurn: 0.03, v6Home: 0.4, v6Mobile: 0.3 },
  US: { weight: 20, tz: -5, residential: [[7922, 35], [7018, 20], [20115, 20], [22773, 10], [701, 10], [5650, 5]], mobile: [[21928, 40], [22394, 35], [7018, 25]], business: [7922, 701, 7018, 3356], homeIpChurn: 0.01, v6Home: 0.5, v6Mobile: 0.8 },
  FR: { weight: 12, tz: 1, residential: [[3215, 40], [12322, 25], [15557, 20], [5410, 15]], mobile: [[3215, 40], [15557, 30], [5410, 30]], business: [3215, 15557, 8220], homeIpChurn: 0.02, v6Home: 0.7, v6Mobile: 0.5 },
  ES: { weight: 8, tz: 1, residential: [[3352, 45], [12479, 25], [12430, 30]], mobile: [[12430, 35], [3352, 35], [12479, 30]], business: [3352, 12430], homeIpChurn: 0.05, v6Home: 0.1, v6Mobile: 0.1 },
  IT: { weight: 8, tz: 1, residential: [[3269, 45], [12874, 25], [30722, 15], [1267, 15]], mobile: [[30722, 35], [1267, 35], [3269, 30]], business: [3269, 12874], homeIpChurn: 0.05, v6Home: 0.1, v6Mobile: 0.1 },
  NL: { weight: 8, tz: 1, residential: [[1136, 40], [33915, 35], [50266, 25]], mobile: [[1136, 35], [50266, 35], [33915, 30]], business: [1136, 33915], homeIpChurn: 0.02, v6Home: 0.3, v6Mobile: 0.3 },
  CH: { weight: 5, tz: 1, residential: [[3303, 55], [6730, 30], [13030, 15]], mobile: [[3303, 60], [6730, 40]], business: [3303, 6730], homeIpChurn: 0.01, v6Home: 0.4, v6Mobile: 0.4 },
};
export const COUNTRY_CODES = Object.keys(COUNTRIES);

/** Cloud and hosting networks: where stuffing bots and phishing proxies run. */
export const HOSTING = [16509, 14618, 14061, 16276, 24940, 396982, 8075, 20473, 51167, 63949, 47583, 197540, 44066, 25369];
/** Security-service-edge egress (corporate "VPN" that is really a cloud proxy). */
export const CORPORATE_EGRESS = [53813, 62044];
/** Where consumer VPN providers rent their exits. */
export const CONSUMER_VPN = [9009, 212238, 60068];
/** Networks that run many Tor exits (privacy foundations and the hosters relay operators favour). */
export const TOR_NETWORKS = [60729, 53667, 208323, 4224, 200052, 205100];
export const TOR_HOSTERS = [24940, 16276, 51167, 197540];
/** Trip destinations people fly or drive to. */
export const DESTINATIONS = ['ES', 'IT', 'FR', 'GB', 'US', 'DE', 'NL', 'CH'];

export function tzOf(cc: string, lon: number): number {
  if (cc === 'US') return Math.max(-8, Math.min(-5, Math.round(lon / 15)));
  return COUNTRIES[cc]?.tz ?? Math.round(lon / 15);
}
