// Which answered scoring requests are mirrored: SHADOW_PERCENT of them, each
// drawn independently (no state shared between requests).

export class Sampler {
  /**
   * @param percent share of requests taken, 0 to 100
   * @param random a uniform draw in [0, 1) (injected by tests)
   */
  constructor(
    private readonly percent: number,
    private readonly random: () => number = Math.random,
  ) {}

  take(): boolean {
    if (this.percent >= 100) return true;
    return this.percent > 0 && this.random() * 100 < this.percent;
  }
}
