// The replaced app's two scenarios against ratestream, unchanged in shape:
//   random_rating: 200 virtual users for 5 minutes rating random posts
//                  1..POSTS with random scores 0..5 as device-id-N;
//   mixed_rating:  after 5 minutes, 400 virtual users for 30 s, half of
//                  the requests giving a 5 to post 1 or 2, half random.
// Every request sleeps 0-0.5 s, as the original did (a closed model: the
// replaced app's own script). readwrite.js and campaign.js are open-model
// load tests with PROFILE=smoke|load|spike.
//   k6 run simulation/k6/seed.js
import { sleep } from 'k6';
import { rate, device, randInt, POSTS, thresholds, summary } from './lib.js';

export const options = {
  scenarios: {
    random_rating: {
      executor: 'constant-vus',
      vus: 200,
      duration: '5m',
      exec: 'randomRating',
    },
    mixed_rating: {
      executor: 'constant-vus',
      vus: 400,
      duration: '30s',
      startTime: '5m',
      exec: 'mixedRating',
    },
  },
  thresholds: thresholds(['rate'], 100),
};

export function randomRating() {
  rate(randInt(1, POSTS), device(), randInt(0, 5));
  sleep(Math.random() * 0.5);
}

export function mixedRating() {
  if (Math.random() < 0.5) {
    rate(randInt(1, 2), device(), 5);
  } else {
    rate(randInt(1, POSTS), device(), randInt(0, 5));
  }
  sleep(Math.random() * 0.5);
}

export function handleSummary(data) {
  return summary(data, 'seed');
}
