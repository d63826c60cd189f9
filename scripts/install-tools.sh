#!/usr/bin/env bash
# install-tools.sh installs the local services the integration tests and the
# demo use into the git-ignored .tools/ folder, pinned to exact versions:
#
#   .tools/dynamodb-local/DynamoDBLocal.jar (+ DynamoDBLocal_lib/)  DynamoDB Local 1.25.1,
#       unpacked from the npm package amplify-dynamodb-simulator (no npm install)
#   .tools/bin/aws-lambda-rie   the AWS Lambda Runtime Interface Emulator
#
# It also checks for java (installs openjdk-17-jre-headless through apt-get when
# missing and running as root) and reports whether the preinstalled Python tools
# aws, cfn-lint and moto_server are on PATH (they cannot be installed here; it does not fail).
#
# Idempotent: each piece is skipped when the pinned version is already there, so
# a second run takes well under a second.
set -euo pipefail

DYNAMODB_NPM_PACKAGE="amplify-dynamodb-simulator"
DYNAMODB_NPM_VERSION="2.9.30"
# sha256 of the DynamoDBLocal.jar (1.25.1) that package ships; npm checks the
# tarball's own integrity, this pins the jar inside it.
DYNAMODB_JAR_SHA256="454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"
RIE_MODULE="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
RIE_VERSION="v0.0.0-20261030222936-bef5c4ba774d"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

say() { printf 'install-tools: %s\n' "$*"; }
die() { printf 'install-tools: error: %s\n' "$*" >&2; exit 1; }

# --- java ---------------------------------------------------------------
java_ok() { command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1; }
if java_ok; then
	say "java: $(java -version 2>&1 | head -n1) (present)"
else
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "java: missing, installing openjdk-17-jre-headless with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
		java_ok || die "java still missing after apt-get install openjdk-17-jre-headless"
		say "java: $(java -version 2>&1 | head -n1) (installed)"
	else
		die "java (17) is missing: install a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless)"
	fi
fi
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
if [ -n "$java_major" ] && [ "$java_major" -lt 17 ]; then
	say "warning: java $java_major found; DynamoDB Local 1.25 wants Java 17 or newer"
fi

# --- DynamoDB Local -------------------------------------------------------
ddb_dir="$tools/dynamodb-local"
ddb_stamp="$ddb_dir/.version"
ddb_want="$DYNAMODB_NPM_PACKAGE@$DYNAMODB_NPM_VERSION"
if [ -f "$ddb_dir/DynamoDBLocal.jar" ] && [ -d "$ddb_dir/DynamoDBLocal_lib" ] &&
	[ "$(cat "$ddb_stamp" 2>/dev/null)" = "$ddb_want" ]; then
	say "DynamoDB Local: $ddb_want already in .tools/dynamodb-local"
else
	command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $ddb_want (install Node.js/npm)"
	say "DynamoDB Local: fetching $ddb_want with npm pack"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "$ddb_want" >/dev/null)
	tgz="$tmp/$DYNAMODB_NPM_PACKAGE-$DYNAMODB_NPM_VERSION.tgz"
	[ -f "$tgz" ] || die "npm pack $ddb_want produced no $tgz"
	tar -xzf "$tgz" -C "$tmp" package/emulator
	[ -f "$tmp/package/emulator/DynamoDBLocal.jar" ] || die "$ddb_want has no emulator/DynamoDBLocal.jar"
	got_sha="$(sha256sum "$tmp/package/emulator/DynamoDBLocal.jar" | cut -d' ' -f1)"
	[ "$got_sha" = "$DYNAMODB_JAR_SHA256" ] ||
		die "DynamoDBLocal.jar from $ddb_want has sha256 $got_sha, want $DYNAMODB_JAR_SHA256"
	rm -rf "$ddb_dir.new" "$ddb_dir"
	mv "$tmp/package/emulator" "$ddb_dir.new"
	printf '%s\n' "$ddb_want" >"$ddb_dir.new/.version"
	mv "$ddb_dir.new" "$ddb_dir"
	rm -rf "$tmp"
	trap - EXIT
	say "DynamoDB Local: installed in .tools/dynamodb-local"
fi

# --- aws-lambda-rie ---------------------------------------------------------
rie_bin="$tools/bin/aws-lambda-rie"
rie_stamp="$tools/bin/.aws-lambda-rie.version"
if [ -x "$rie_bin" ] && [ "$(cat "$rie_stamp" 2>/dev/null)" = "$RIE_VERSION" ]; then
	say "aws-lambda-rie: $RIE_VERSION already in .tools/bin"
else
	command -v go >/dev/null 2>&1 || die "go is needed to build aws-lambda-rie"
	say "aws-lambda-rie: go install $RIE_MODULE@$RIE_VERSION"
	(cd "$root" && GOBIN="$tools/bin" CGO_ENABLED=0 go install "$RIE_MODULE@$RIE_VERSION")
	[ -x "$rie_bin" ] || die "go install did not produce $rie_bin"
	printf '%s\n' "$RIE_VERSION" >"$rie_stamp"
	say "aws-lambda-rie: installed in .tools/bin"
fi

# --- preinstalled Python tools (reported, never installed) ----------------
for tool in aws cfn-lint moto_server; do
	if command -v "$tool" >/dev/null 2>&1; then
		case "$tool" in
		moto_server) version="moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')" ;;
		*) version="$("$tool" --version 2>&1 | head -n1)" ;;
		esac
		say "$tool: $version (on PATH)"
	else
		say "$tool: not on PATH (a preinstalled Python tool; tests that need it will say so)"
	fi
done

say "done"
