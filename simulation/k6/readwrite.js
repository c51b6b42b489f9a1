// A read/write mix: listing pages, reading single posts as a user, and
// rating. 70% reads, 30% writes.
//   k6 run -e VUS=200 -e DURATION=2m simulation/k6/readwrite.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { QUERY, rate, device, randInt, POSTS } from './lib.js';

export const options = {
  scenarios: {
    read_write: {
      executor: 'constant-vus',
      vus: parseInt(__ENV.VUS || '200', 10),
      duration: __ENV.DURATION || '2m',
    },
  },
  thresholds: {
    'checks': ['rate>0.99'],
    'http_req_duration{name:page}': ['p(99)<50'],
    'http_req_duration{name:post}': ['p(99)<50'],
  },
};

export default function () {
  const user = device();
  const x = Math.random();
  if (x < 0.35) {
    const after = randInt(0, POSTS);
    const res = http.get(`${QUERY}/v1/posts?limit=10&after=${after}`, {
      headers: { 'X-User-ID': user }, tags: { name: 'page' },
    });
    check(res, { 'page: status is 200': (r) => r.status === 200 });
  } else if (x < 0.7) {
    const res = http.get(`${QUERY}/v1/posts/${randInt(1, POSTS)}`, {
      headers: { 'X-User-ID': user }, tags: { name: 'post' },
    });
    check(res, { 'post: status is 200': (r) => r.status === 200 });
  } else {
    rate(randInt(1, POSTS), user, randInt(0, 5));
  }
  sleep(Math.random() * 0.5);
}
