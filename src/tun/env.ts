/**
 * On/off switches from the environment, one parser for all of them (WG_TS_TUN_OFFLOAD,
 * WG_TS_TUN_GRO, WG_TS_UDP_GSO, WG_TS_UDP_GRO): '0', 'false', 'off' or 'no' in any case mean
 * off, any other value on, unset or blank the default.
 */
export function envSwitch(value: string | undefined, fallback: boolean): boolean {
  const v = value?.trim().toLowerCase();
  if (v === undefined || v === '') return fallback;
  return !(v === '0' || v === 'false' || v === 'off' || v === 'no');
}
