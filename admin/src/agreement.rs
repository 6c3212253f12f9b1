//! Agreement statistics that do not flatter, shared by the golden-set harness (`cargo xtask
//! eval-golden`: evaluator vs labels, and label pass vs label pass) and the calibration report
//! (AI vs the center's supervisors).
//!
//! - Check answers are compared with not_applicable and skipped (no answer) as categories of
//!   their own: a "no" answered not_applicable is the most dangerous disagreement and must not
//!   drop out. Applicability (applicable / not_applicable / skipped) is also compared on its own.
//! - Beside Cohen's kappa, prevalence-robust statistics: Gwet's AC1 and PABAK (kappa collapses
//!   when one answer dominates, as "yes" does for a good call).
//! - Percentile bootstrap 95% intervals from a seeded generator, so a report is reproducible.
//! - Quadratic-weighted kappa for the ordinal 1-4 ratings and the score bands.
//! - Flag precision and recall per type, with the counts they rest on.

use serde::Serialize;
use store::{CheckAnswer, FlagType, ScoreBand};
use utoipa::ToSchema;

/// The categories a check comparison uses (one rater's answer; `Skipped`: no answer).
pub const ANSWER_CATEGORIES: [Answer; 4] = [Answer::Yes, Answer::No, Answer::NotApplicable, Answer::Skipped];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    Yes,
    No,
    NotApplicable,
    Skipped,
}

impl Answer {
    pub fn of(answer: Option<CheckAnswer>) -> Answer {
        match answer {
            Some(CheckAnswer::Yes) => Answer::Yes,
            Some(CheckAnswer::No) => Answer::No,
            Some(CheckAnswer::NotApplicable) => Answer::NotApplicable,
            // A yes without a counselor turn to rest on was not really answered.
            Some(CheckAnswer::NotAssessed) | None => Answer::Skipped,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::NotApplicable => "not_applicable",
            Answer::Skipped => "skipped",
        }
    }

    /// Applicability: yes and no are both "applicable".
    fn applicability(self) -> Answer {
        match self {
            Answer::Yes | Answer::No => Answer::Yes,
            other => other,
        }
    }
}

/// Observed agreement p_o.
pub fn observed<T: PartialEq>(pairs: &[(T, T)]) -> Option<f64> {
    (!pairs.is_empty()).then(|| pairs.iter().filter(|(a, b)| a == b).count() as f64 / pairs.len() as f64)
}

/// Each category's share for the first and the second rater.
fn marginals<T: PartialEq + Copy>(pairs: &[(T, T)], categories: &[T]) -> Vec<(f64, f64)> {
    let n = pairs.len() as f64;
    categories
        .iter()
        .map(|c| {
            let first = pairs.iter().filter(|(a, _)| a == c).count() as f64 / n;
            let second = pairs.iter().filter(|(_, b)| b == c).count() as f64 / n;
            (first, second)
        })
        .collect()
}

fn categories_of<T: PartialEq + Copy>(pairs: &[(T, T)]) -> Vec<T> {
    let mut categories: Vec<T> = Vec::new();
    for (a, b) in pairs {
        for c in [*a, *b] {
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
    }
    categories
}

/// Cohen's kappa, (p_o - p_e) / (1 - p_e), p_e from each rater's own category shares. `None`
/// when undefined: no items, or p_e = 1 (both raters used one and the same category throughout).
pub fn cohens_kappa<T: PartialEq + Copy>(pairs: &[(T, T)]) -> Option<f64> {
    let p_o = observed(pairs)?;
    let chance: f64 = marginals(pairs, &categories_of(pairs)).iter().map(|(a, b)| a * b).sum();
    if (1.0 - chance).abs() < 1e-12 {
        return None;
    }
    Some((p_o - chance) / (1.0 - chance))
}

/// Gwet's AC1 over `categories` (q of them): p_e = Σ π_k (1 - π_k) / (q - 1), π_k the mean of
/// the two raters' shares of category k. Stays meaningful when one category dominates.
pub fn gwet_ac1<T: PartialEq + Copy>(pairs: &[(T, T)], categories: &[T]) -> Option<f64> {
    let p_o = observed(pairs)?;
    if categories.len() < 2 {
        return None;
    }
    let q = categories.len() as f64;
    let chance: f64 =
        marginals(pairs, categories).iter().map(|(a, b)| (a + b) / 2.0).map(|pi| pi * (1.0 - pi)).sum::<f64>()
            / (q - 1.0);
    if (1.0 - chance).abs() < 1e-12 {
        return None;
    }
    Some((p_o - chance) / (1.0 - chance))
}

/// Prevalence- and bias-adjusted kappa for q categories: (q p_o - 1) / (q - 1).
pub fn pabak<T: PartialEq>(pairs: &[(T, T)], q: usize) -> Option<f64> {
    let p_o = observed(pairs)?;
    (q >= 2).then(|| (q as f64 * p_o - 1.0) / (q as f64 - 1.0))
}

/// Quadratic-weighted kappa for ordinal scores in `levels` (e.g. 1..=4): disagreement weight
/// (i - j)² / (k - 1)². `None` when undefined (no items, or no expected disagreement).
pub fn weighted_kappa(pairs: &[(u8, u8)], levels: std::ops::RangeInclusive<u8>) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let (lo, hi) = (*levels.start(), *levels.end());
    let k = usize::from(hi - lo) + 1;
    if k < 2 {
        return None;
    }
    let n = pairs.len() as f64;
    let idx = |v: u8| usize::from(v.clamp(lo, hi) - lo);
    let mut observed = vec![vec![0.0; k]; k];
    let (mut rows, mut cols) = (vec![0.0; k], vec![0.0; k]);
    for (a, b) in pairs {
        observed[idx(*a)][idx(*b)] += 1.0 / n;
        rows[idx(*a)] += 1.0 / n;
        cols[idx(*b)] += 1.0 / n;
    }
    let w = |i: usize, j: usize| ((i as f64 - j as f64) / (k as f64 - 1.0)).powi(2);
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            num += w(i, j) * observed[i][j];
            den += w(i, j) * rows[i] * cols[j];
        }
    }
    (den > 1e-12).then(|| 1.0 - num / den)
}

/// A small seeded generator (SplitMix64): reproducible bootstrap resamples without a dependency
/// on a particular `rand` version's stream.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Resamples drawn for a bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// The seed every report uses, so its intervals are reproducible.
pub const BOOTSTRAP_SEED: u64 = 0x5EED_2026;

/// Percentile bootstrap 95% interval of `stat` over `items` resampled with replacement.
/// Resamples where the statistic is undefined are left out; `None` when fewer than half of them
/// are defined (the interval would describe a different population).
pub fn bootstrap_ci<T: Clone>(
    items: &[T],
    stat: impl Fn(&[T]) -> Option<f64>,
    resamples: usize,
    seed: u64,
) -> Option<[f64; 2]> {
    if items.len() < 2 || resamples == 0 {
        return None;
    }
    let mut rng = SeededRng::new(seed);
    let mut values = Vec::with_capacity(resamples);
    let mut sample = Vec::with_capacity(items.len());
    for _ in 0..resamples {
        sample.clear();
        sample.extend((0..items.len()).map(|_| items[rng.below(items.len())].clone()));
        values.extend(stat(&sample));
    }
    if values.len() * 2 < resamples {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some([at(0.025), at(0.975)])
}

fn round3(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1000.0).round() / 1000.0)
}

fn round3_ci(v: Option<[f64; 2]>) -> Option<[f64; 2]> {
    v.map(|[a, b]| [(a * 1000.0).round() / 1000.0, (b * 1000.0).round() / 1000.0])
}

/// Agreement on check answers: reference (a label, a supervisor) vs the other rater.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckAgreement {
    /// Compared answers.
    pub n: usize,
    pub agreed: usize,
    /// The other rater gave no answer (a category of its own, never dropped).
    pub skipped: usize,
    /// The reference said no and the other said not_applicable or skipped: the most dangerous
    /// disagreement, counted apart.
    pub no_answered_na: usize,
    pub agreement: Option<f64>,
    /// Cohen's kappa over yes / no / not_applicable / skipped.
    pub kappa: Option<f64>,
    pub kappa_ci: Option<[f64; 2]>,
    /// Gwet's AC1 over the four categories.
    pub ac1: Option<f64>,
    pub ac1_ci: Option<[f64; 2]>,
    /// PABAK over the four categories.
    pub pabak: Option<f64>,
    /// Applicability (applicable / not_applicable / skipped): agreement and kappa.
    pub applicability_agreement: Option<f64>,
    pub applicability_kappa: Option<f64>,
    /// Reference "no" labels among the compared answers (how much the numbers can say about misses).
    pub reference_no: usize,
}

impl CheckAgreement {
    pub fn of(pairs: &[(Answer, Answer)], seed: u64) -> Self {
        let applicability: Vec<(Answer, Answer)> =
            pairs.iter().map(|(a, b)| (a.applicability(), b.applicability())).collect();
        let ac1 = |p: &[(Answer, Answer)]| gwet_ac1(p, &ANSWER_CATEGORIES);
        CheckAgreement {
            n: pairs.len(),
            agreed: pairs.iter().filter(|(a, b)| a == b).count(),
            skipped: pairs.iter().filter(|(_, b)| *b == Answer::Skipped).count(),
            no_answered_na: pairs
                .iter()
                .filter(|(a, b)| *a == Answer::No && matches!(b, Answer::NotApplicable | Answer::Skipped))
                .count(),
            agreement: round3(observed(pairs)),
            kappa: round3(cohens_kappa(pairs)),
            kappa_ci: round3_ci(bootstrap_ci(pairs, cohens_kappa, BOOTSTRAP_RESAMPLES, seed)),
            ac1: round3(ac1(pairs)),
            ac1_ci: round3_ci(bootstrap_ci(pairs, ac1, BOOTSTRAP_RESAMPLES, seed ^ 0xAC1)),
            pabak: round3(pabak(pairs, ANSWER_CATEGORIES.len())),
            applicability_agreement: round3(observed(&applicability)),
            applicability_kappa: round3(cohens_kappa(&applicability)),
            reference_no: pairs.iter().filter(|(a, _)| *a == Answer::No).count(),
        }
    }
}

/// Agreement on 1-4 ratings (null: the criterion did not apply).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingAgreement {
    pub n: usize,
    /// Both rated (the weighted kappa rests on these).
    pub both_rated: usize,
    /// Exactly the same (including both null).
    pub exact: usize,
    /// Within one point (both rated).
    pub within_one: usize,
    pub weighted_kappa: Option<f64>,
    pub weighted_kappa_ci: Option<[f64; 2]>,
}

impl RatingAgreement {
    pub fn of(pairs: &[(Option<u8>, Option<u8>)], seed: u64) -> Self {
        let rated: Vec<(u8, u8)> = pairs.iter().filter_map(|(a, b)| Some(((*a)?, (*b)?))).collect();
        let wk = |p: &[(u8, u8)]| weighted_kappa(p, 1..=4);
        RatingAgreement {
            n: pairs.len(),
            both_rated: rated.len(),
            exact: pairs.iter().filter(|(a, b)| a == b).count(),
            within_one: rated.iter().filter(|(a, b)| a.abs_diff(*b) <= 1).count(),
            weighted_kappa: round3(wk(&rated)),
            weighted_kappa_ci: round3_ci(bootstrap_ci(&rated, wk, BOOTSTRAP_RESAMPLES, seed)),
        }
    }
}

/// Agreement on score bands (null: no score).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BandAgreement {
    pub n: usize,
    pub agreed: usize,
    pub agreement: Option<f64>,
    pub kappa: Option<f64>,
    /// Quadratic-weighted over the band order (needs_work < developing < proficient < strong).
    pub weighted_kappa: Option<f64>,
    /// The other rater's band was higher than the reference's: the flattering error.
    pub other_higher: usize,
}

impl BandAgreement {
    pub fn of(pairs: &[(Option<ScoreBand>, Option<ScoreBand>)]) -> Self {
        let ranked: Vec<(u8, u8)> =
            pairs.iter().filter_map(|(a, b)| Some(((*a)?.rank() + 1, (*b)?.rank() + 1))).collect();
        BandAgreement {
            n: pairs.len(),
            agreed: pairs.iter().filter(|(a, b)| a == b).count(),
            agreement: round3(observed(pairs)),
            kappa: round3(cohens_kappa(pairs)),
            weighted_kappa: round3(weighted_kappa(&ranked, 1..=ScoreBand::ALL.len() as u8)),
            other_higher: ranked.iter().filter(|(a, b)| b > a).count(),
        }
    }
}

/// Flag precision and recall for one flag type, with the counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagAgreement {
    /// A flag type, or `all`.
    pub flag_type: String,
    /// The reference raised it (true positives + false negatives).
    pub expected: usize,
    /// The other rater raised it.
    pub raised: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub true_negatives: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    /// Kappa over the raise / not-raise decisions.
    pub kappa: Option<f64>,
}

impl FlagAgreement {
    /// `decisions`: per item, (reference raised, other raised).
    pub fn of(flag_type: &str, decisions: &[(bool, bool)]) -> Self {
        let count = |e: bool, r: bool| decisions.iter().filter(|d| **d == (e, r)).count();
        let (tp, fp, fneg, tn) = (count(true, true), count(false, true), count(true, false), count(false, false));
        let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
        FlagAgreement {
            flag_type: flag_type.to_owned(),
            expected: tp + fneg,
            raised: tp + fp,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fneg,
            true_negatives: tn,
            precision: round3(ratio(tp, tp + fp)),
            recall: round3(ratio(tp, tp + fneg)),
            kappa: round3(cohens_kappa(decisions)),
        }
    }

    /// Per flag type over items that each have (reference flags, other flags), then `all`.
    pub fn per_type(types: &[FlagType], items: &[(Vec<FlagType>, Vec<FlagType>)]) -> Vec<FlagAgreement> {
        let mut all = Vec::new();
        let mut out: Vec<FlagAgreement> = types
            .iter()
            .map(|t| {
                let decisions: Vec<(bool, bool)> = items.iter().map(|(e, r)| (e.contains(t), r.contains(t))).collect();
                all.extend_from_slice(&decisions);
                FlagAgreement::of(t.as_str(), &decisions)
            })
            .collect();
        out.push(FlagAgreement::of("all", &all));
        out
    }
}

/// A stable seed per name, so each statistic's bootstrap is reproducible and independent.
pub fn seed_for(name: &str) -> u64 {
    name.bytes().fold(BOOTSTRAP_SEED, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    fn table(a: usize, b: usize, c: usize, d: usize) -> Vec<(bool, bool)> {
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n((true, true), a));
        pairs.extend(std::iter::repeat_n((true, false), b));
        pairs.extend(std::iter::repeat_n((false, true), c));
        pairs.extend(std::iter::repeat_n((false, false), d));
        pairs
    }

    #[test]
    fn kappa_matches_textbook_examples() {
        // 20/5/10/15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
        assert!(close(cohens_kappa(&table(20, 5, 10, 15)), 0.4));
        // 45/15/25/15: p_o = 0.6, p_e = 0.54, kappa = 0.06 / 0.46.
        assert!(close(cohens_kappa(&table(45, 15, 25, 15)), 0.06 / 0.46));
        assert!(close(cohens_kappa(&[(true, false), (false, true)]), -1.0));
        assert_eq!(cohens_kappa::<bool>(&[]), None);
        assert_eq!(cohens_kappa(&[(true, true), (true, true)]), None);
    }

    #[test]
    fn ac1_and_pabak_by_hand() {
        // 20/5/10/15 (n = 50): p_o = 0.7. π_yes = (25/50 + 30/50) / 2 = 0.55, π_no = 0.45;
        // p_e = 2 * 0.55 * 0.45 / 1 = 0.495; AC1 = (0.7 - 0.495) / 0.505.
        assert!(close(gwet_ac1(&table(20, 5, 10, 15), &[true, false]), 0.205 / 0.505));
        // PABAK, 2 categories: 2 * 0.7 - 1 = 0.4.
        assert!(close(pabak(&table(20, 5, 10, 15), 2), 0.4));
        // The prevalence paradox: 9 of 10 "yes" both, one disagreement. p_o = 0.9.
        // Kappa: p_e = 1.0 * 0.9 + 0 * 0.1 = 0.9 → (0.9 - 0.9) / 0.1 = 0.
        let skewed = table(9, 0, 1, 0);
        assert!(close(cohens_kappa(&skewed), 0.0));
        // AC1: π_yes = (1.0 + 0.9) / 2 = 0.95, p_e = 2 * 0.95 * 0.05 = 0.095;
        // AC1 = (0.9 - 0.095) / 0.905.
        assert!(close(gwet_ac1(&skewed, &[true, false]), 0.805 / 0.905));
        assert!(close(pabak(&skewed, 2), 0.8));
        // Four categories, three used: PABAK = (4 * 2/3 - 1) / 3.
        let three = [(Answer::Yes, Answer::Yes), (Answer::No, Answer::NotApplicable), (Answer::No, Answer::No)];
        assert!(close(pabak(&three, 4), (4.0 * 2.0 / 3.0 - 1.0) / 3.0));
    }

    #[test]
    fn not_applicable_and_skipped_are_categories() {
        // A "no" answered N/A is a disagreement, not a dropped item.
        let pairs = [
            (Answer::Yes, Answer::Yes),
            (Answer::No, Answer::No),
            (Answer::No, Answer::NotApplicable),
            (Answer::NotApplicable, Answer::NotApplicable),
            (Answer::Yes, Answer::Skipped),
        ];
        let a = CheckAgreement::of(&pairs, 1);
        assert_eq!((a.n, a.agreed, a.skipped, a.no_answered_na, a.reference_no), (5, 3, 1, 1, 2));
        assert!(close(a.agreement, 0.6));
        // Applicability: (A,A), (A,A), (A,NA), (NA,NA), (A,S): 3 of 5 agree.
        assert!(close(a.applicability_agreement, 0.6));
        // Kappa by hand over 4 categories: reference shares yes 2/5, no 2/5, na 1/5; other yes
        // 1/5, no 1/5, na 2/5, skipped 1/5. p_e = (2 + 2 + 2) / 25 = 0.24; kappa = 0.36 / 0.76.
        assert!(close(a.kappa.map(|k| (k * 1000.0).round()), (0.36f64 / 0.76 * 1000.0).round()));
    }

    #[test]
    fn weighted_kappa_by_hand() {
        // Perfect: 1.
        assert!(close(weighted_kappa(&[(1, 1), (2, 2), (4, 4)], 1..=4), 1.0));
        // Two items (1,2), (2,1) on a 1-4 scale: weight of a one-step miss = 1/9.
        // Observed: 0.5 * 1/9 * 2 = 1/9. Rows and columns: 1 and 2 each 0.5; expected =
        // Σ w r_i c_j = 0.25 * (0 + 1/9 + 1/9 + 0) = 1/18. kappa = 1 - (1/9) / (1/18) = -1.
        assert!(close(weighted_kappa(&[(1, 2), (2, 1)], 1..=4), -1.0));
        // Near misses count less than far ones.
        let near = weighted_kappa(&[(1, 1), (2, 2), (3, 4), (4, 4), (2, 1)], 1..=4).unwrap_or(0.0);
        let far = weighted_kappa(&[(1, 1), (2, 2), (3, 4), (4, 4), (2, 4)], 1..=4).unwrap_or(0.0);
        assert!(near > far, "{near} {far}");
        assert_eq!(weighted_kappa(&[(3, 3)], 1..=4), None);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let pairs = table(20, 5, 10, 15);
        let a = bootstrap_ci(&pairs, cohens_kappa, 500, 7);
        assert_eq!(a, bootstrap_ci(&pairs, cohens_kappa, 500, 7), "same seed, same interval");
        let [lo, hi] = a.expect("defined");
        assert!(lo < 0.4 && 0.4 < hi && lo > -0.2 && hi < 0.8, "{lo} {hi}");
        // Perfect agreement on a mixed sample: kappa is 1 in every defined resample.
        let perfect = table(5, 0, 0, 5);
        assert_eq!(bootstrap_ci(&perfect, cohens_kappa, 200, 3), Some([1.0, 1.0]));
        assert_eq!(bootstrap_ci(&pairs[..1], cohens_kappa, 200, 3), None);
    }

    #[test]
    fn flag_counts_precision_recall() {
        let f = FlagAgreement::of("x", &[(true, true), (true, false), (false, true), (false, false), (true, true)]);
        assert_eq!((f.true_positives, f.false_positives, f.false_negatives, f.true_negatives), (2, 1, 1, 1));
        assert!(close(f.precision, 0.667) && close(f.recall, 0.667));
        let none = FlagAgreement::of("y", &[(false, false)]);
        assert_eq!((none.precision, none.recall), (None, None));
    }

    #[test]
    fn bands_count_flattering_errors() {
        use ScoreBand::*;
        let b = BandAgreement::of(&[(Some(NeedsWork), Some(Strong)), (Some(Strong), Some(Strong)), (None, None)]);
        assert_eq!((b.n, b.agreed, b.other_higher), (3, 2, 1));
    }
}
