// A read/write mix at a fixed arrival rate: 35% keyset pages, 35% single
// posts read with X-User-ID, 30% ratings.
//   k6 run -e PROFILE=smoke simulation/k6/readwrite.js
//   k6 run -e RATE=2000 -e DURATION=2m simulation/k6/readwrite.js
//   k6 run -e PROFILE=spike -e RATE=500 simulation/k6/readwrite.js
import http from 'k6/http';
import { check } from 'k6';
import { QUERY, rate, readPost, device, randInt, POSTS, arrival, thresholds, summary } from './lib.js';

const RATE = parseFloat(__ENV.RATE || '500');

export const options = {
  scenarios: {
    read_write: arrival('readWrite', RATE),
  },
  thresholds: thresholds(['page', 'post'], 50, { 'http_req_duration{name:rate}': ['p(99)<100'] }),
};

export function readWrite() {
  const user = device();
  const x = Math.random();
  if (x < 0.35) {
    const after = randInt(0, POSTS);
    const res = http.get(`${QUERY}/v1/posts?limit=10&after=${after}`, {
      headers: { 'X-User-ID': user }, tags: { name: 'page' },
    });
    check(res, { 'page: status is 200': (r) => r.status === 200 });
  } else if (x < 0.7) {
    readPost(randInt(1, POSTS), user, 'post');
  } else {
    rate(randInt(1, POSTS), user, randInt(0, 5));
  }
}

export function handleSummary(data) {
  return summary(data, 'readwrite');
}
