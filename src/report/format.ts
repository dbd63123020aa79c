/** Number formatting shared by the report's HTML, text and CSV-free outputs. */

/** Three significant figures, no exponent for everyday magnitudes. */
export function sig(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const abs = Math.abs(x);
  if (abs >= 1e-4 && abs < 1e9) return String(Number(x.toPrecision(digits)));
  return x.toExponential(digits - 1);
}

/** A share in [0, 1] as a percentage; null reads "n/a". */
export function pct(share: number | null): string {
  return share === null ? "n/a" : `${sig(share * 100)}%`;
}

/** Integers as they are, other numbers to three significant figures. */
export function num(x: number): string {
  return Number.isInteger(x) && Math.abs(x) < 1e6 ? String(x) : Math.abs(x) >= 1e6 ? si(x) : sig(x);
}

/** 1.3e6 -> "1.3 M", for counts (FLOPs, parameters). */
export function si(x: number): string {
  const units: Array<[number, string]> = [
    [1e15, "P"],
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [scale, u] of units) if (Math.abs(x) >= scale) return `${sig(x / scale)} ${u}`;
  return Number.isInteger(x) ? String(x) : sig(x);
}

/** Bytes in binary units: "45.8 MiB". */
export function bytes(b: number): string {
  if (b >= 2 ** 30) return `${sig(b / 2 ** 30)} GiB`;
  if (b >= 2 ** 20) return `${sig(b / 2 ** 20)} MiB`;
  if (b >= 2 ** 10) return `${sig(b / 2 ** 10)} KiB`;
  return `${b} B`;
}
