import { expect, test } from 'vitest';
import { mulberry32 } from '../src/hash.js';
import { maxInWindow } from '../src/index.js';

function brute(times: number[], windowMs: number): number {
  return Math.max(0, ...times.map((start) => times.filter((t) => t >= start && t < start + windowMs).length));
}

test('counts the busiest half-open window on a known sequence', () => {
  const times = [0, 0, 0, 500, 1000, 1000, 1999];
  expect(maxInWindow(times, 1000)).toBe(4); // [0, 1000)
  expect(maxInWindow(times, 1)).toBe(3);
  expect(maxInWindow(times, 1001)).toBe(6); // [0, 1001)
  expect(maxInWindow([], 1000)).toBe(0);
  expect(maxInWindow([5, 3, 1], 3)).toBe(2); // unsorted input
});

test('matches brute force on random sequences', () => {
  const random = mulberry32(7);
  for (let round = 0; round < 200; round++) {
    const times = Array.from({ length: 1 + Math.floor(random() * 80) }, () => Math.floor(random() * 5000));
    const windowMs = 1 + Math.floor(random() * 1500);
    expect(maxInWindow(times, windowMs)).toBe(brute(times, windowMs));
  }
});
