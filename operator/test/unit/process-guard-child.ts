// Child process of process-guard.test.ts: installs the guard, then fails the way argv[2] says.
import { installProcessGuard } from '../../src/process-guard';

installProcessGuard();
if (process.argv[2] === 'throw') {
  setTimeout(() => {
    throw new Error('boom (throw)');
  }, 10);
} else {
  void Promise.reject(new Error('boom (reject)'));
}
setTimeout(() => process.exit(0), 5000);
