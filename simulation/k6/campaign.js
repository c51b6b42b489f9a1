// A load test that checks correctness as well as speed: honest traffic
// on POSTS posts, a share of it on one post (TARGET), then a campaign of
// new accounts giving that post CAMPAIGN_SCORE, then honest traffic
// again. A watcher reads the post every second; score_drift is how far
// its score moved from the last score before the campaign, mean_drift how
// far the plain mean of its raters moved. The test fails if the score
// drifts by MAX_DRIFT or more (the campaign moved it), or if the plain
// mean moved by less than MIN_CAMPAIGN (the campaign was too small to
// prove anything), or on the usual failed, dropped or slow requests.
//
// Set the timeline in whole windows of the stack's WINDOW: the post needs
// a few windows of honest ratings to have a typical activity and an
// opinion before the campaign (defaults: WINDOW=1m).
//   k6 run simulation/k6/campaign.js
//   k6 run -e WARMUP=20s -e CAMPAIGN=10s -e AFTER=10s simulation/k6/campaign.js   # against make run WINDOW=1s
//   k6 run -e PROFILE=smoke simulation/k6/campaign.js                            # does it run at all
import exec from 'k6/execution';
import { Trend } from 'k6/metrics';
import http from 'k6/http';
import { check } from 'k6';
import { QUERY, POSTS, PROFILE, rate, randInt, thresholds, summary } from './lib.js';

const smoke = PROFILE === 'smoke';
const RATE = parseFloat(__ENV.RATE || (smoke ? '5' : '100'));
const TARGET = parseInt(__ENV.TARGET || '1', 10);
const SHARE = parseFloat(__ENV.TARGET_SHARE || '0.3');
const WARMUP = __ENV.WARMUP || (smoke ? '10s' : '8m');
const CAMPAIGN = __ENV.CAMPAIGN || (smoke ? '10s' : '3m');
const AFTER = __ENV.AFTER || (smoke ? '10s' : '4m');
const CAMPAIGN_RATE = parseFloat(__ENV.CAMPAIGN_RATE || String(10 * RATE * SHARE));
const CAMPAIGN_SCORE = parseInt(__ENV.CAMPAIGN_SCORE || '0', 10);
const MAX_DRIFT = parseFloat(__ENV.MAX_DRIFT || '0.1');
const MIN_CAMPAIGN = parseFloat(__ENV.MIN_CAMPAIGN || (smoke ? '0' : '0.5'));

// seconds reads a k6 duration such as 8m, 30s or 1m30s.
function seconds(d) {
  let s = 0;
  for (const [, n, u] of d.matchAll(/(\d+(?:\.\d+)?)(h|m|s|ms)/g)) {
    s += parseFloat(n) * { h: 3600, m: 60, s: 1, ms: 0.001 }[u];
  }
  return s;
}

const total = seconds(WARMUP) + seconds(CAMPAIGN) + seconds(AFTER);
const vus = Math.max(10, Math.ceil((RATE + CAMPAIGN_RATE) / 10));

const scoreDrift = new Trend('score_drift');
const meanDrift = new Trend('mean_drift');

export const options = {
  scenarios: {
    honest: { executor: 'constant-arrival-rate', exec: 'honest', rate: Math.round(RATE), timeUnit: '1s',
      duration: `${total}s`, preAllocatedVUs: vus, maxVUs: vus * 10 },
    campaign: { executor: 'constant-arrival-rate', exec: 'campaign', rate: Math.max(1, Math.round(CAMPAIGN_RATE)), timeUnit: '1s',
      startTime: WARMUP, duration: CAMPAIGN, preAllocatedVUs: vus, maxVUs: vus * 10 },
    watch: { executor: 'constant-arrival-rate', exec: 'watch', rate: 1, timeUnit: '1s',
      duration: `${total}s`, preAllocatedVUs: 1, maxVUs: 1 },
  },
  thresholds: thresholds(['rate'], 100, {
    score_drift: [`max<${MAX_DRIFT}`],
    mean_drift: [`max>=${MIN_CAMPAIGN}`],
  }),
};

// Honest raters of the target like it (mean 4.15); the other posts get
// any score.
const liked = [0, 0, 0.05, 0.15, 0.4, 0.4];

function draw(probs) {
  let x = Math.random();
  for (let s = 0; s < probs.length; s++) {
    if (x < probs[s]) {
      return s;
    }
    x -= probs[s];
  }
  return probs.length - 1;
}

function account(kind) {
  return `${kind}-${__VU}-${__ITER}-${randInt(0, 1e9)}`;
}

export function honest() {
  if (Math.random() < SHARE || POSTS < 2) {
    rate(TARGET, account('honest'), draw(liked));
    return;
  }
  let post = randInt(1, POSTS - 1); // any other post, any score
  if (post >= TARGET) {
    post++;
  }
  rate(post, account('honest'), randInt(0, 5));
}

export function campaign() {
  rate(TARGET, account('campaign'), CAMPAIGN_SCORE);
}

// The watcher is one VU: its baseline is the target's score and plain
// mean when the campaign starts.
let baseline = null;

export function watch() {
  const res = http.get(`${QUERY}/v1/posts/${TARGET}/explain?history=1m`, { tags: { name: 'explain' } });
  check(res, { 'explain: status is 200': (r) => r.status === 200 });
  if (res.status !== 200) {
    return;
  }
  const x = /** @type {{score: number | null, mean: number | null}} */ (res.json());
  if (x.score === null || x.mean === null) {
    return;
  }
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  if (elapsed < seconds(WARMUP)) {
    baseline = { score: x.score, mean: x.mean };
    return;
  }
  if (baseline !== null) {
    scoreDrift.add(Math.abs(x.score - baseline.score));
    meanDrift.add(Math.abs(x.mean - baseline.mean));
  }
}

export function handleSummary(data) {
  return summary(data, 'campaign');
}
