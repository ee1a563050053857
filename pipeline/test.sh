#!/usr/bin/env bash
# Pipeline step "unit and parity tests" (Test stage): the model compiler's
# pytest suite (parity included) and the TypeScript unit suites, with JUnit
# results in reports/junit/ and Cobertura coverage in coverage/. (mocha's own
# xunit reporter writes the JUnit XML: mocha-junit-reporter 2 fails on mocha 12.)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
mkdir -p reports/junit coverage
rc=0

step "model: compile 1.0.0 (the parity tests read it)"
bash scripts/model.sh build

step "pytest: model compiler and parity"
"$PY" -m pytest model/tests -q -p no:cacheprovider --junitxml=reports/junit/pytest.xml || rc=1

# Both tiers of the TypeScript suites (test/tiers.cjs): the in-process suites of
# npm run test:unit and those of npm run test:slow (processes, tools, stress).
step "mocha: unit and slow suites (JUnit reports/junit/mocha.xml, coverage in coverage/)"
npx c8 --reporter=cobertura --reporter=text-summary --report-dir coverage \
  --include 'lib/*/src/**' --include 'scorer/src/**' --include 'operator/src/**' --include 'cli/src/**' --include 'pipeline/src/**' \
  mocha --config .mocharc.pipeline.cjs --reporter xunit --reporter-option output=reports/junit/mocha.xml || rc=1
# shellcheck disable=SC2016 # JavaScript, not shell: ${...} is a template literal for node.
node -e '
  const x = require("fs").readFileSync("reports/junit/mocha.xml", "utf8");
  const m = /<testsuite[^>]*tests="(\d+)"[^>]*failures="(\d+)"/.exec(x);
  console.log(m ? `    mocha: ${m[1]} tests, ${m[2]} failures` : "    mocha: no summary in reports/junit/mocha.xml");
'
exit "$rc"
