// A read/write mix at a fixed arrival rate: 25% keyset pages by id, 10%
// the best or trending first, 35% single posts read with X-User-ID, 27%
// ratings, 3% ratings taken back.
//   k6 run -e PROFILE=smoke simulation/k6/readwrite.js
//   k6 run -e RATE=2000 -e DURATION=2m simulation/k6/readwrite.js
//   k6 run -e PROFILE=spike -e RATE=500 simulation/k6/readwrite.js
import http from 'k6/http';
import { check } from 'k6';
import { INGEST, QUERY, rate, readPost, device, randInt, POSTS, arrival, thresholds, summary } from './lib.js';

const RATE = parseFloat(__ENV.RATE || '500');

export const options = {
  scenarios: {
    read_write: arrival('readWrite', RATE),
  },
  thresholds: thresholds(['page', 'sorted', 'post'], 50, {
    'http_req_duration{name:rate}': ['p(99)<100'],
    'http_req_duration{name:retract}': ['p(99)<100'],
  }),
};

export function readWrite() {
  const user = device();
  const x = Math.random();
  if (x < 0.25) {
    const after = randInt(0, POSTS);
    const res = http.get(`${QUERY}/v1/posts?limit=10&after=${after}`, {
      headers: { 'X-User-ID': user }, tags: { name: 'page' },
    });
    check(res, { 'page: status is 200': (r) => r.status === 200 });
  } else if (x < 0.35) {
    const sort = x < 0.3 ? 'top' : 'trending';
    const res = http.get(`${QUERY}/v1/posts?limit=10&sort=${sort}`, {
      headers: { 'X-User-ID': user }, tags: { name: 'sorted' },
    });
    check(res, { 'sorted: status is 200': (r) => r.status === 200 });
  } else if (x < 0.7) {
    readPost(randInt(1, POSTS), user, 'post');
  } else if (x < 0.97) {
    rate(randInt(1, POSTS), user, randInt(0, 5));
  } else {
    const res = http.del(`${INGEST}/v1/posts/${randInt(1, POSTS)}/ratings`, null, {
      headers: { 'X-User-ID': user }, tags: { name: 'retract' },
    });
    check(res, { 'retract: status is 202': (r) => r.status === 202 });
  }
}

export function handleSummary(data) {
  return summary(data, 'readwrite');
}
