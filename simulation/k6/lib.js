// Shared by the ratestream k6 scripts. Every setting comes from the
// environment (k6 run -e NAME=VALUE):
//   INGEST_URL, QUERY_URL   the services (http://127.0.0.1:8080, :8081)
//   POSTS, USERS            posts 1..POSTS exist; users device-id-1..USERS
//   PROFILE                 smoke, load (default) or spike: see arrival()
//   RATE, DURATION          requests a second and length of the load profile
//   SUMMARY                 where handleSummary writes the JSON summary
import http from 'k6/http';
import { check } from 'k6';

export const INGEST = __ENV.INGEST_URL || 'http://127.0.0.1:8080';
export const QUERY = __ENV.QUERY_URL || 'http://127.0.0.1:8081';
export const POSTS = parseInt(__ENV.POSTS || '1000', 10);
export const USERS = parseInt(__ENV.USERS || '1000000', 10);
export const PROFILE = __ENV.PROFILE || 'load';

export function randInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

export function device() {
  return `device-id-${randInt(1, USERS)}`;
}

// rate is the replaced app's request: POST /api/rate, expecting 201.
export function rate(post, user, score) {
  const res = http.post(
    `${INGEST}/api/rate`,
    JSON.stringify({ post: post, user_id: user, score: score }),
    { headers: { 'Content-Type': 'application/json' }, tags: { name: 'rate' } },
  );
  check(res, { 'rate: status is 201': (r) => r.status === 201 });
  return res;
}

// readPost reads one post as a user and returns its JSON (null on error).
export function readPost(post, user, tag) {
  const res = http.get(`${QUERY}/v1/posts/${post}`, {
    headers: user ? { 'X-User-ID': user } : {}, tags: { name: tag || 'post' },
  });
  check(res, { 'post: status is 200': (r) => r.status === 200 });
  if (res.status !== 200) {
    return null;
  }
  return res.json();
}

// arrival is an open-model scenario running exec at about rate requests a
// second, shaped by PROFILE: smoke (a twentieth of the rate, at least 1/s,
// for 30 s: does it work at all), load (the rate for DURATION, default
// 5m) or spike (the rate, then five times it for a minute, then back).
// Requests start on time whatever the answers' latency; those that find
// no free VU are dropped_iterations.
export function arrival(exec, rate, profile) {
  const p = profile || PROFILE;
  const r = Math.max(1, Math.round(rate));
  const vus = Math.max(10, Math.ceil(r / 10));
  switch (p) {
    case 'smoke':
      return { executor: 'constant-arrival-rate', exec: exec, rate: Math.max(1, Math.round(r / 20)), timeUnit: '1s',
        duration: '30s', preAllocatedVUs: 5, maxVUs: 20 };
    case 'load':
      return { executor: 'constant-arrival-rate', exec: exec, rate: r, timeUnit: '1s',
        duration: __ENV.DURATION || '5m', preAllocatedVUs: vus, maxVUs: vus * 10 };
    case 'spike':
      return { executor: 'ramping-arrival-rate', exec: exec, startRate: r, timeUnit: '1s',
        preAllocatedVUs: vus * 5, maxVUs: vus * 50,
        stages: [
          { target: r, duration: '1m' },
          { target: r * 5, duration: '10s' },
          { target: r * 5, duration: '1m' },
          { target: r, duration: '10s' },
          { target: r, duration: '1m' },
        ] };
    default:
      throw new Error(`PROFILE=${p}: want smoke, load or spike`);
  }
}

// thresholds make k6 exit non-zero when the service fails: more than 1%
// failed requests, more than 1% of the due requests dropped for want of a
// VU (the service fell behind), or p99 latency of the named requests above
// p99ms. extra adds the script's own.
export function thresholds(names, p99ms, extra) {
  const t = {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    dropped_iterations: ['count<10'],
  };
  for (const n of names) {
    t[`http_req_duration{name:${n}}`] = [`p(99)<${p99ms}`];
  }
  return Object.assign(t, extra || {});
}

// summary is a handleSummary: the whole summary as JSON in SUMMARY
// (default summary-<script>.json) and the figures that matter on stdout.
export function summary(data, script) {
  const out = {};
  out[__ENV.SUMMARY || `summary-${script}.json`] = JSON.stringify(data, null, 2);
  const lines = [`${script} (${PROFILE}):`];
  for (const [name, m] of Object.entries(data.metrics)) {
    const v = m.values || {};
    const shown = ['count', 'rate', 'avg', 'p(90)', 'p(99)', 'max']
      .filter((k) => v[k] !== undefined)
      .map((k) => `${k}=${Math.round(v[k] * 1000) / 1000}`);
    const verdict = m.thresholds
      ? Object.values(m.thresholds).every((x) => x.ok) ? ' ok' : ' FAILED'
      : '';
    lines.push(`  ${name}: ${shown.join(' ')}${verdict}`);
  }
  out.stdout = lines.join('\n') + '\n';
  return out;
}
