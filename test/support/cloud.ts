// The test cloud's access lives with the tools (benchmarks use it too).
export * from '../../tools/lib/cloud.js';
