"""Customer behaviour segments: per-customer features from silver_calls, K-Means, readable labels.

Three pure pieces, wired together by `1_5_segment_customers.py`:

1. `customer_features` turns contacts into one row of behaviour features per customer.
2. `CustomerSegmenter` (scikit-learn estimator contract) standardises them and runs K-Means, with k
   fixed or chosen by silhouette; segments are numbered by a deterministic key of their centroid, so
   segment 0 is the same kind of customer from one night to the next.
3. `segment_labels` names each segment from its centroid alone (`frequent · long calls`), and
   `segment_rows` produces the rows of `gold_dim_customer_behavior`.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd

from common.errors import ConfigError, DataError

QUEUE_PREFIX = "queue_share__"
# Counts and durations are right-skewed (most customers call 2-3 times, a few call 200 times; handle times are
# roughly log-normal). Standardised raw, a handful of extreme customers would own most of the variance and
# K-Means would spend whole clusters on them; log1p compresses the tail so clusters describe typical behaviour.
# Rates and shares are already bounded in [0, 1] and stay linear.
LOG_FEATURES = ("contacts", "contacts_per_active_week", "mean_handle_seconds")
# Segment numbering key: least frequent callers first, then shorter calls first.
ORDER_KEY = ("contacts", "mean_handle_seconds")
# |z| of a centroid below this is "typical": not distinctive enough to name.
LABEL_Z = 0.5
FREQUENCY_WORDS = ("rare", "occasional", "frequent")  # contacts z <= -LABEL_Z, between, >= LABEL_Z
PHRASES = {  # feature: (phrase when the centroid is high, phrase when low)
    "contacts_per_active_week": ("bursty", "spread out"),
    "peak_share": ("peak hours", "off-peak"),
    "mean_handle_seconds": ("long calls", "short calls"),
    "abandon_rate": ("abandons often", "rarely abandons"),
    "redial_rate": ("redials often", "rarely redials"),
}
SEPARATOR = " · "
JSON_SLICE_ROWS = 50_000  # customers turned into JSON text at a time (memory of to_json grows with rows)
_REQUIRED = ("customer_id", "queue", "start_time", "date", "outcome", "handle_seconds", "attempts")
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _peak_window(peak_hours: str) -> tuple[int, int]:
    """`"HH:MM-HH:MM"` -> (start, end) minutes after local midnight; the window is [start, end)."""
    match = _WINDOW_RE.match(peak_hours) if isinstance(peak_hours, str) else None
    if match is None:
        raise ConfigError(f'segmentation.peak_hours: {peak_hours!r} is not a time window; use "HH:MM-HH:MM"')
    sh, sm, eh, em = (int(g) for g in match.groups())
    start, end = sh * 60 + sm, eh * 60 + em
    if sh > 23 or sm > 59 or em > 59 or end > 24 * 60 or end <= start:
        raise ConfigError(f'segmentation.peak_hours: {peak_hours!r} must end after it starts, within 00:00-24:00; '
                          'use "HH:MM-HH:MM"')
    return start, end


TALLY_COLUMNS = ("contacts", "active_weeks", "peak", "abandoned", "redialed", "handle_sum", "handle_n")


def _check_columns(calls: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in calls.columns]
    if missing:
        raise DataError(f"silver_calls is missing column(s) {', '.join(missing)} needed for customer features")


def week_blocks(start: date, end: date, weeks: int) -> list[tuple[date, date]]:
    """[start, end) cut into half-open date ranges that break only on Mondays, each at most `weeks` weeks long.

    Contacts read block by block then never split a customer's Monday-to-Sunday week, so `customer_tallies`
    of the blocks add up (`add_tallies`) to the tallies of the whole window.
    """
    if weeks < 1:
        raise ConfigError(f"weeks == {weeks}, must be >= 1")
    blocks, lo = [], start
    while lo < end:
        next_monday = lo + timedelta(days=(7 - lo.weekday()) % 7 or 7)
        hi = min(end, next_monday + timedelta(weeks=weeks - 1))
        blocks.append((lo, hi))
        lo = hi
    return blocks


def customer_tallies(calls: pd.DataFrame, peak_hours: str = "09:00-12:00") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Additive counts behind the behaviour features, for the contacts in `calls` that have a customer_id.

    Returns (per_customer, per_queue). per_customer: one row per customer_id (the index, unsorted) with
    TALLY_COLUMNS: contacts, active_weeks (Monday-to-Sunday weeks with a contact), peak (contacts starting in the
    local `peak_hours` window [start, end)), abandoned (abandoned + short_abandon), redialed (attempts > 1),
    handle_sum / handle_n (answered contacts with a handle time). per_queue: one row per (customer_id, queue) with
    `contacts`. Tallies of frames that hold disjoint whole weeks (`week_blocks`) add up with `add_tallies`.
    """
    _check_columns(calls)
    peak_start, peak_end = _peak_window(peak_hours)
    c = calls.loc[calls["customer_id"].notna().to_numpy()]
    # Unsorted factorize: sorting millions of id strings here is most of the cost, and the order is set once
    # at the end (`features_from_tallies`).
    cust_codes, cust = pd.factorize(c["customer_id"].astype("str"))
    n = len(cust)

    def per_customer(values: np.ndarray) -> np.ndarray:
        return np.bincount(cust_codes, weights=values, minlength=n)

    days = pd.to_datetime(c["date"]).to_numpy(dtype="datetime64[D]").astype("int64")
    week = (days + 3) // 7  # 1970-01-01 was a Thursday: +3 makes each block of 7 days start on a Monday
    week = week - week.min(initial=0)
    n_weeks = int(week.max(initial=0)) + 1
    start_time = pd.to_datetime(c["start_time"])
    minute = (start_time.dt.hour * 60 + start_time.dt.minute).to_numpy()
    outcome = c["outcome"].astype("str").to_numpy()
    handle = pd.to_numeric(c["handle_seconds"]).astype("float64").to_numpy()
    has_handle = (outcome == "answered") & ~np.isnan(handle)
    tallies = pd.DataFrame({
        "contacts": np.bincount(cust_codes, minlength=n).astype("float64"),
        "active_weeks": np.bincount(np.unique(cust_codes * n_weeks + week) // n_weeks, minlength=n).astype("float64"),
        "peak": per_customer(((minute >= peak_start) & (minute < peak_end)).astype(float)),
        "abandoned": per_customer(np.isin(outcome, ["abandoned", "short_abandon"]).astype(float)),
        "redialed": per_customer((pd.to_numeric(c["attempts"]).fillna(1).to_numpy() > 1).astype(float)),
        "handle_sum": per_customer(np.where(has_handle, handle, 0.0)),
        "handle_n": per_customer(has_handle.astype(float)),
    }, index=pd.Index(cust, dtype="str", name="customer_id"))
    queue_codes, queues = pd.factorize(c["queue"].astype("str"))
    pair, counts = np.unique(cust_codes * max(len(queues), 1) + queue_codes, return_counts=True)
    per_queue = pd.DataFrame({
        "customer_id": pd.Series(np.asarray(cust, dtype=object)[pair // max(len(queues), 1)], dtype="str"),
        "queue": pd.Series(np.asarray(queues, dtype=object)[pair % max(len(queues), 1)], dtype="str"),
        "contacts": counts.astype("float64"),
    })
    return tallies, per_queue


def add_tallies(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tallies of two sets of contacts that share no customer-week (see `week_blocks`)."""
    per_customer = pd.concat([a[0], b[0]]).groupby(level=0, sort=False).sum()
    per_queue = pd.concat([a[1], b[1]], ignore_index=True).groupby(["customer_id", "queue"], sort=False,
                                                                   as_index=False)["contacts"].sum()
    return per_customer, per_queue


def features_from_tallies(tallies: tuple[pd.DataFrame, pd.DataFrame], min_contacts: int = 2) -> pd.DataFrame:
    """`customer_features`' frame from (added-up) `customer_tallies`: rates, queue shares, the median fill."""
    if min_contacts < 1:
        raise ConfigError(f"segmentation.min_contacts == {min_contacts}, must be >= 1")
    per_customer, per_queue = tallies
    ids = per_customer.index.to_numpy(dtype=object)
    # A fixed-width unicode copy sorts in C; sorting the object array compares Python strings (10x slower).
    order = np.argsort(np.array(ids.tolist(), dtype="U") if len(ids) else np.array([], dtype="U1"), kind="stable")
    t = per_customer.iloc[order]
    t = t.loc[t["contacts"].to_numpy() >= min_contacts]
    contacts = t["contacts"].to_numpy()
    handle_n = t["handle_n"].to_numpy()
    out = pd.DataFrame({
        "customer_id": pd.Series(t.index.to_numpy(dtype=object), dtype="str"),
        "contacts": contacts.astype("int64"),
        "contacts_per_active_week": contacts / t["active_weeks"].to_numpy(),
        "peak_share": t["peak"].to_numpy() / contacts,
        "mean_handle_seconds": np.divide(t["handle_sum"].to_numpy(), handle_n, out=np.full(len(t), np.nan),
                                         where=handle_n > 0),
        "abandon_rate": t["abandoned"].to_numpy() / contacts,
        "redial_rate": t["redialed"].to_numpy() / contacts,
    })
    # Queue shares of the included customers only: a queue only excluded customers used would be an all-zero
    # column, no information, only noise in the JSON.
    row = pd.Index(out["customer_id"]).get_indexer(per_queue["customer_id"])
    used = per_queue.loc[row >= 0]
    queues = sorted(used["queue"].unique().tolist())
    mix = np.zeros((len(out), len(queues)))
    np.add.at(mix, (row[row >= 0], pd.Index(queues).get_indexer(used["queue"])), used["contacts"].to_numpy())
    shares = pd.DataFrame(mix / contacts[:, None] if len(out) else mix, columns=[QUEUE_PREFIX + q for q in queues])
    out = pd.concat([out, shares], axis=1)
    median = out["mean_handle_seconds"].median()
    out["mean_handle_seconds"] = out["mean_handle_seconds"].fillna(0.0 if pd.isna(median) else median)
    return out


def customer_features(calls: pd.DataFrame, as_of: date, window_days: int, peak_hours: str = "09:00-12:00",
                      min_contacts: int = 2) -> pd.DataFrame:
    """Behaviour features of each customer over the trailing window.

    Grain: one row per customer_id with at least `min_contacts` contacts whose local `date` is in
    [as_of - window_days, as_of); rows sorted by customer_id. Contacts without a customer_id are ignored.
    All contacts count (outside opening hours and `other` outcomes too): this is behaviour, not demand.

    Columns: customer_id; contacts; contacts_per_active_week (contacts / Monday-to-Sunday calendar weeks with
    at least one contact: calendar weeks, not weeks counted back from as_of, so a re-run one day later moves
    no contact into another week); peak_share (share starting in the local `peak_hours` window [start, end));
    mean_handle_seconds (mean over answered contacts with a handle time; a customer with none gets the median
    of the included customers' means, so "never answered" does not read as "zero-second calls" - 0 if
    nobody was answered); abandon_rate (abandoned + short_abandon over contacts); redial_rate (contacts that
    collapsed a redial chain, attempts > 1, over contacts); then `queue_share__<queue>` per queue seen in the
    window by an included customer (share of the customer's contacts; sorted by queue; a row's shares sum to 1).

    The same as `features_from_tallies` of the `add_tallies` of `customer_tallies` over `week_blocks` of the
    window, which is how the step reads a big window without holding it all.
    """
    if window_days < 1:
        raise ConfigError(f"segmentation.window_days == {window_days}, must be >= 1")
    _check_columns(calls)  # peak_hours and min_contacts are checked where they are used
    end = pd.Timestamp(as_of)
    day = pd.to_datetime(calls["date"])
    keep = (day >= end - timedelta(days=window_days)).to_numpy() & (day < end).to_numpy()
    return features_from_tallies(customer_tallies(calls.loc[keep], peak_hours), min_contacts)


def feature_columns(features: pd.DataFrame) -> list[str]:
    """The model's inputs in a features frame: every column but customer_id, in frame order."""
    return [c for c in features.columns if c != "customer_id"]


def _phrase(feature: str, high: bool) -> str:
    if feature.startswith(QUEUE_PREFIX):
        queue = feature.removeprefix(QUEUE_PREFIX)
        return f"mostly {queue}" if high else f"seldom {queue}"
    return PHRASES[feature][0 if high else 1]


def _ranked_phrases(z: pd.Series) -> list[str]:
    """Phrases for the centroid's distinctive non-frequency features, most distinctive (largest |z|) first."""
    others = z.drop(labels=["contacts"], errors="ignore")
    others = others[others.abs() >= LABEL_Z]
    # Ties in |z| are broken by feature name, so the label never depends on column order.
    ranked = sorted(others.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    return [_phrase(name, value > 0) for name, value in ranked]


def segment_labels(centroid_z: pd.DataFrame) -> list[str]:
    """A unique readable label per segment, from its centroid's z-scores against the whole population.

    Grain of the input: one row per segment, one column per feature (standardised units, the space K-Means
    works in). A label is the frequency word from `contacts` (rare | occasional | frequent, at |z| >= 0.5)
    and the phrase of the most distinctive other feature (largest |z|, at least 0.5; high/low variants),
    e.g. `frequent · long calls`, `rare · peak hours`, or just `occasional` when nothing else stands out.
    It depends on the centroid only. When two segments would share a label, each of them gets its next most
    distinctive phrase; if they still coincide, the segment number is appended (`rare · short calls (3)`).
    """
    bases, extras = [], []
    for _, z in centroid_z.iterrows():
        cz = float(z.get("contacts", 0.0))
        word = FREQUENCY_WORDS[0] if cz <= -LABEL_Z else FREQUENCY_WORDS[2] if cz >= LABEL_Z else FREQUENCY_WORDS[1]
        phrases = _ranked_phrases(z)
        bases.append(SEPARATOR.join([word, *phrases[:1]]))
        extras.append(phrases[1:2])
    counts = pd.Series(bases).value_counts()
    labels = [SEPARATOR.join([b, *extra]) if counts[b] > 1 else b for b, extra in zip(bases, extras)]
    counts = pd.Series(labels).value_counts()
    return [f"{lab} ({i})" if counts[lab] > 1 else lab for i, lab in enumerate(labels)]


class CustomerSegmenter:
    """K-Means on standardised customer features, with stable segment numbers and readable labels.

    Parameters are stored as given (scikit-learn's estimator convention; scikit-learn itself is imported on first
    fit, so a step's `--help` never waits for it). `k`: fixed number of segments, or None to choose
    it in `k_range` (inclusive) by the best silhouette (ties: the smaller k). The silhouette is scored on a
    seeded sample of at most `silhouette_sample` customers, and k is chosen by fitting K-Means on that same
    sample, so choosing k stays fast with a million customers; the final model is fitted on a seeded sample of
    at most `fit_sample` customers (everyone, below that) and assigns every customer to its nearest centroid.

    After `fit`: `feature_names_`, `scaler_` (StandardScaler on log1p of LOG_FEATURES, raw elsewhere),
    `kmeans_` (its cluster numbers are not the segment numbers), `k_`, `silhouette_` (final model, on the
    sample), `silhouette_by_k_` (empty when k was fixed), `cluster_to_segment_`, `labels_` (segment of each
    fitted row), `centroids_` (one row per segment, original units; log features are back-transformed, so
    they are geometric-style means), `centroid_z_` (the same in standardised units), `segment_labels_`.
    """

    def __init__(self, k: int | None = None, k_range: tuple[int, int] = (2, 6), seed: int = 42,
                 silhouette_sample: int = 5_000, fit_sample: int = 200_000) -> None:
        self.k = k
        self.k_range = k_range
        self.seed = seed
        self.silhouette_sample = silhouette_sample
        self.fit_sample = fit_sample

    def _check_params(self) -> None:
        if self.k is not None and self.k < 2:
            raise ConfigError(f"segmentation.k == {self.k}, must be >= 2 (or null to choose by silhouette)")
        lo, hi = self.k_range
        if not 2 <= lo <= hi:
            raise ConfigError(f"segmentation.k_range == {list(self.k_range)}, must be [low, high] with 2 <= low <= high")
        if self.silhouette_sample < 10:
            raise ConfigError(f"silhouette_sample == {self.silhouette_sample}, must be >= 10")
        if self.fit_sample < 100:
            raise ConfigError(f"fit_sample == {self.fit_sample}, must be >= 100")

    def _transform(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names_ if c not in features.columns]
        if missing:
            raise DataError(f"features lack column(s) {', '.join(missing)} the segmenter was fitted on")
        x = features[self.feature_names_].to_numpy(dtype="float64", copy=True)
        for i, name in enumerate(self.feature_names_):
            if name in LOG_FEATURES:
                x[:, i] = np.log1p(x[:, i])
        return x

    def fit(self, features: pd.DataFrame, y: None = None) -> CustomerSegmenter:
        """Fit on a `customer_features` frame (one row per customer); return self."""
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score
        from sklearn.preprocessing import StandardScaler

        self._check_params()
        self.feature_names_ = feature_columns(features)
        if features[self.feature_names_].isna().any().any():
            raise DataError("customer features contain missing values; build them with customer_features")
        x = self._transform(features)
        self.scaler_ = StandardScaler().fit(x)
        z = self.scaler_.transform(x)
        n_distinct = len(np.unique(z, axis=0))
        ks = [self.k] if self.k is not None else list(range(self.k_range[0], self.k_range[1] + 1))
        ks = [k for k in ks if k < n_distinct]  # silhouette needs 2 <= clusters <= distinct points - 1
        if not ks:
            wanted = self.k if self.k is not None else self.k_range[0]
            raise DataError(f"{len(z)} customers with {n_distinct} distinct feature rows cannot make {wanted} "
                            f"segments; need at least {wanted + 1} distinct customers")
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(len(z), size=min(len(z), self.silhouette_sample), replace=False))
        self.silhouette_by_k_: dict[int, float] = {}
        if self.k is None:
            zs = z[sample]
            sample_distinct = len(np.unique(zs, axis=0))
            for k in (k for k in ks if k < sample_distinct):
                labels = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit_predict(zs)
                self.silhouette_by_k_[k] = float(silhouette_score(zs, labels)) if len(set(labels)) > 1 else -1.0
            # max() keeps the first best, and ks ascend: ties go to the smaller k.
            self.k_ = max(self.silhouette_by_k_, key=self.silhouette_by_k_.get) if self.silhouette_by_k_ else ks[0]
        else:
            self.k_ = self.k
        # Centroids from a large random sample are as good as from everyone (their standard error shrinks with
        # the square root of the sample) and cost a fraction: K-Means with 10 restarts on a million customers takes
        # most of the step. Every customer is then assigned to its nearest centroid.
        fit_rows = (np.sort(rng.choice(len(z), size=self.fit_sample, replace=False))
                    if len(z) > self.fit_sample else slice(None))
        self.kmeans_ = KMeans(n_clusters=self.k_, n_init=10, random_state=self.seed).fit(z[fit_rows])

        centers_z = pd.DataFrame(self.kmeans_.cluster_centers_, columns=self.feature_names_)
        centers = self._original_units(self.kmeans_.cluster_centers_)
        # Segment numbers follow the centroid, not K-Means' arbitrary cluster numbers: ORDER_KEY[0] is the
        # primary key (lexsort sorts by its last key first), then the rest of the features break exact ties.
        keys = [*ORDER_KEY, *(c for c in self.feature_names_ if c not in ORDER_KEY)]
        order = np.lexsort([centers[c].to_numpy() for c in reversed(keys) if c in centers.columns])
        self.cluster_to_segment_ = np.empty(self.k_, dtype="int64")
        self.cluster_to_segment_[order] = np.arange(self.k_)
        self.centroids_ = centers.iloc[order].reset_index(drop=True).rename_axis("segment")
        self.centroid_z_ = centers_z.iloc[order].reset_index(drop=True).rename_axis("segment")
        self.segment_labels_ = segment_labels(self.centroid_z_)
        self.labels_ = self.cluster_to_segment_[self.kmeans_.predict(z)]
        labels_s = self.labels_[sample]
        self.silhouette_ = float(silhouette_score(z[sample], labels_s)) if len(set(labels_s)) > 1 else float("nan")
        return self

    def _original_units(self, centers: np.ndarray) -> pd.DataFrame:
        x = self.scaler_.inverse_transform(centers)
        for i, name in enumerate(self.feature_names_):
            if name in LOG_FEATURES:
                x[:, i] = np.expm1(x[:, i])
        return pd.DataFrame(x, columns=self.feature_names_)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Segment number of each row of a `customer_features` frame (columns as at fit time)."""
        if not hasattr(self, "kmeans_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("CustomerSegmenter is not fitted yet; call fit(features) first")
        z = self.scaler_.transform(self._transform(features))
        return self.cluster_to_segment_[self.kmeans_.predict(z)]


def segment_rows(features: pd.DataFrame, segmenter: CustomerSegmenter, decimals: int = 3) -> pd.DataFrame:
    """Rows for `gold_dim_customer_behavior` (without run_id/as_of).

    Grain: one row per customer of `features`. Columns: customer_id, segment (int), segment_label, features
    (JSON object text of that customer's feature values rounded to `decimals`, keys in column order).
    """
    segments = segmenter.predict(features)
    names = feature_columns(features)
    values = features[names].round(decimals)
    if "contacts" in values.columns:
        values["contacts"] = values["contacts"].astype("int64")  # a count reads as 7, not 7.0
    # In slices: to_json builds the whole text, then copies of it; for a million customers that is GBs.
    json_text = [line for lo in range(0, len(values), JSON_SLICE_ROWS)
                 for line in values.iloc[lo:lo + JSON_SLICE_ROWS].to_json(
                     orient="records", lines=True, double_precision=max(decimals, 1)).splitlines()]
    labels = np.asarray(segmenter.segment_labels_, dtype=object)
    return pd.DataFrame({
        "customer_id": features["customer_id"].astype("str").to_numpy(),
        "segment": segments.astype("int64"),
        "segment_label": pd.Series(labels[segments], dtype="str").to_numpy(),
        "features": pd.Series(json_text, dtype="str").to_numpy(),
    })
