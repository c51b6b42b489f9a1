// Shared by the ratestream k6 scripts. Base URLs come from the
// environment: INGEST_URL (default http://127.0.0.1:8080) and QUERY_URL
// (default http://127.0.0.1:8081).
import http from 'k6/http';
import { check } from 'k6';

export const INGEST = __ENV.INGEST_URL || 'http://127.0.0.1:8080';
export const QUERY = __ENV.QUERY_URL || 'http://127.0.0.1:8081';
export const POSTS = parseInt(__ENV.POSTS || '1000', 10);
export const USERS = parseInt(__ENV.USERS || '1000000', 10);

export function randInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

// rate is the seed's request: POST /api/rate, expecting 201.
export function rate(post, user, score) {
  const res = http.post(
    `${INGEST}/api/rate`,
    JSON.stringify({ post: post, user_id: user, score: score }),
    { headers: { 'Content-Type': 'application/json' }, tags: { name: 'rate' } },
  );
  check(res, { 'rate: status is 201': (r) => r.status === 201 });
  return res;
}

export function device() {
  return `device-id-${randInt(1, USERS)}`;
}
