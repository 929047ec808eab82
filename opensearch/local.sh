#!/usr/bin/env bash
# Real OpenSearch nodes with ML-Commons and neural-search, assembled offline from Maven Central.
#
#   opensearch/local.sh start  [--profile NAME]   assemble on first use (cached), start, wait for green
#   opensearch/local.sh stop   [--profile NAME]   stop this profile's nodes (checked in /proc), nothing else
#   opensearch/local.sh status [--profile NAME]   cluster health, or "not running" (exit 3)
#   opensearch/local.sh logs   [--profile NAME]   the last lines of each node's log (LINES=100)
#   opensearch/local.sh env    [--profile NAME] [--user USER]   the exports a client needs: eval "$(...)"
#   opensearch/local.sh purge  [--profile NAME]   stop, then delete the nodes' data, logs and certificates
#   opensearch/local.sh home   [--profile NAME]   the assembled OpenSearch home
#   opensearch/local.sh pid    [--profile NAME] [--node NAME]   the pid of the first (or named) node, or exit 3
#   opensearch/local.sh nodes  [--profile NAME]   each node's name, roles, URL and pid ("-" when down)
#
# Profiles (ports: KO_SPARSE_OPENSEARCH_PORT and KO_SPARSE_OPENSEARCH_TRANSPORT_PORT move the first node's):
#   default     OpenSearch 3.6.0, one node on http://127.0.0.1:9200, no security, models on the data node
#   secure      OpenSearch 2.19.1 with the security plugin on https://127.0.0.1:9250 (transport 9350):
#               a CA and node certificate made with openssl at first start, users admin (all_access) and
#               ko-sparse-reader (reads and searches, cannot register models), model access control on
#   ml-cluster  OpenSearch 3.6.0 as four nodes: three cluster-manager-eligible data nodes on
#               http://127.0.0.1:9260, :9262 and :9263, and a dedicated ML node on :9261 (transport
#               9360-9363); only_run_on_ml_node is true; new indices get 3 shards and 1 replica (a template),
#               so one data node can be lost (kill -9) and `start` brings it back into the cluster
#
# OpenSearch refuses to run as root. Started by root, the nodes run as the system user
# KO_SPARSE_OPENSEARCH_USER (created if missing), which can write only its nodes' data, logs and run
# folders: homes, configuration, certificates, libtorch and stdout.log stay root's, logs are read as the
# node user, and a process is signalled only after /proc shows it is that node's java, run by that user
# with that node's configuration. Every download must match the sha256 pinned in versions.env.
#
# Environment: KO_SPARSE_OPENSEARCH_CACHE (default ~/.cache/ko-sparse/opensearch, for root
# /var/cache/ko-sparse/opensearch), KO_SPARSE_OPENSEARCH_HEAP (2g default profile, 1g per node others),
# KO_SPARSE_OPENSEARCH_PLUGINS (a subset of the profile's plugins, or "none"), KO_SPARSE_OPENSEARCH_USER
# (ko-sparse-opensearch), OPENSEARCH_JAVA_HOME (else the first fitting Java in JAVA_HOME or
# JAVA_SEARCH_DIRS, default /usr/lib/jvm/*), MAVEN_REPO (https://repo1.maven.org/maven2), START_TIMEOUT (240 s),
# KO_SPARSE_OPENSEARCH_SETTINGS (extra node settings for this start, space-separated KEY=VALUE, e.g.
# "thread_pool.write.queue_size=1": static settings the tests need, such as a tiny bulk queue).
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"

say() { printf '[opensearch] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

# ------------------------------------------------------------------------------------------ arguments
COMMAND=${1:-}
[ $# -gt 0 ] && shift
PROFILE=default
ENV_USER=
NODE_NAME=
while [ $# -gt 0 ]; do
  case $1 in
    --profile) [ $# -ge 2 ] || usage; PROFILE=$2; shift 2 ;;
    --profile=*) PROFILE=${1#*=}; shift ;;
    --user) [ $# -ge 2 ] || usage; ENV_USER=$2; shift 2 ;;
    --user=*) ENV_USER=${1#*=}; shift ;;
    --node) [ $# -ge 2 ] || usage; NODE_NAME=$2; shift 2 ;;
    --node=*) NODE_NAME=${1#*=}; shift ;;
    *) usage ;;
  esac
done

MAVEN_REPO=${MAVEN_REPO:-https://repo1.maven.org/maven2}
START_TIMEOUT=${START_TIMEOUT:-240}
NODE_USER=${KO_SPARSE_OPENSEARCH_USER:-ko-sparse-opensearch}
if [ "$(id -u)" = 0 ]; then
  CACHE=${KO_SPARSE_OPENSEARCH_CACHE:-/var/cache/ko-sparse/opensearch}
  RUN_AS=$NODE_USER
else
  CACHE=${KO_SPARSE_OPENSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ko-sparse/opensearch}
  RUN_AS=$(id -un)
fi

# --------------------------------------------------------------------------------------------- profiles
STACK_PLUGINS="opensearch-job-scheduler opensearch-ml-plugin opensearch-knn neural-search"
case $PROFILE in
  default | ml-cluster)
    VERSION=$OPENSEARCH_VERSION PLUGIN_VERSION=$OPENSEARCH_PLUGIN_VERSION
    TORCH=$PYTORCH_VERSION JNI=$PYTORCH_JNI_VERSION JNI_BRIDGE= JAVA_MIN=$JAVA_MIN_VERSION JAVA_MAX=
    PROFILE_PLUGINS=$STACK_PLUGINS SCHEME=http ;;
  secure)
    VERSION=$SECURE_OPENSEARCH_VERSION PLUGIN_VERSION=$SECURE_OPENSEARCH_PLUGIN_VERSION
    TORCH=$SECURE_PYTORCH_VERSION JNI=$SECURE_PYTORCH_JNI_VERSION JNI_BRIDGE=$SECURE_PYTORCH_JNI_BRIDGE
    JAVA_MIN=$SECURE_JAVA_MIN_VERSION JAVA_MAX=$SECURE_JAVA_MAX_VERSION
    PROFILE_PLUGINS="opensearch-security $STACK_PLUGINS" SCHEME=https ;;
  *) die "unknown profile '$PROFILE': choose default, secure or ml-cluster" ;;
esac
case $PROFILE in
  default)
    NODE_NAMES=(ko-sparse-node) NODE_ROLES=("")
    FIRST_PORT=${KO_SPARSE_OPENSEARCH_PORT:-9200} FIRST_TRANSPORT=${KO_SPARSE_OPENSEARCH_TRANSPORT_PORT:-}
    HEAP=${KO_SPARSE_OPENSEARCH_HEAP:-2g} ;;
  secure)
    NODE_NAMES=(ko-sparse-node) NODE_ROLES=("")
    FIRST_PORT=${KO_SPARSE_OPENSEARCH_PORT:-9250} FIRST_TRANSPORT=${KO_SPARSE_OPENSEARCH_TRANSPORT_PORT:-9350}
    HEAP=${KO_SPARSE_OPENSEARCH_HEAP:-1g} ;;
  ml-cluster)
    NODE_NAMES=(ko-sparse-data-1 ko-sparse-ml ko-sparse-data-2 ko-sparse-data-3)
    NODE_ROLES=("cluster_manager, data, ingest" "ml" "cluster_manager, data, ingest" "cluster_manager, data, ingest")
    FIRST_PORT=${KO_SPARSE_OPENSEARCH_PORT:-9260} FIRST_TRANSPORT=${KO_SPARSE_OPENSEARCH_TRANSPORT_PORT:-9360}
    HEAP=${KO_SPARSE_OPENSEARCH_HEAP:-1g} ;;
esac
CLUSTER_NAME=$(sed -n 's/^cluster\.name: *//p' "$HERE/profiles/$PROFILE.yml")

# the plugins to install, in the profile's order (ml extends job-scheduler, neural-search extends k-NN)
PLUGINS=
for plugin in ${KO_SPARSE_OPENSEARCH_PLUGINS:-$PROFILE_PLUGINS}; do
  [ "$plugin" = none ] && continue
  case " $PROFILE_PLUGINS " in *" $plugin "*) ;; *) die "KO_SPARSE_OPENSEARCH_PLUGINS: '$plugin' is not one of: $PROFILE_PLUGINS" ;; esac
done
for plugin in $PROFILE_PLUGINS; do
  case " ${KO_SPARSE_OPENSEARCH_PLUGINS:-$PROFILE_PLUGINS} " in *" $plugin "*) PLUGINS="$PLUGINS $plugin" ;; esac
done
PLUGINS=${PLUGINS# }
if [ "$SCHEME" = https ] && [[ " $PLUGINS " != *" opensearch-security "* ]]; then
  die "the $PROFILE profile needs the opensearch-security plugin"
fi
DIST_NAME=opensearch-$VERSION
[ "$PLUGINS" = "$PROFILE_PLUGINS" ] || DIST_NAME=$DIST_NAME-$(printf '%s' "${PLUGINS:-bare}" | tr ' ' '_')  # no '+': policy file URLs decode it

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DOWNLOADS=$CACHE/downloads
NODE_HOME=$CACHE/dist/$DIST_NAME
LIBTORCH=$CACHE/libtorch/$TORCH-cpu-jni-$JNI

# node I (0-based): its ports, instance folder and paths
node_port() { echo $((FIRST_PORT + $1)); }
node_transport() { [ -n "$FIRST_TRANSPORT" ] && echo $((FIRST_TRANSPORT + $1)) || true; }
node_instance() {
  local port
  port=$(node_port "$1")
  # the default profile keeps the folder name it always had (VERSION-PORT)
  if [ "$PROFILE" = default ]; then echo "$CACHE/instances/$VERSION-$port"; else echo "$CACHE/instances/$PROFILE-$VERSION-$port"; fi
}
node_url() { echo "$SCHEME://127.0.0.1:$(node_port "$1")"; }
URL=$(node_url 0)
FIRST_INSTANCE=$(node_instance 0)
TLS_DIR=$FIRST_INSTANCE/tls
CREDENTIALS=$FIRST_INSTANCE/credentials

# ------------------------------------------------------------------------------------------------ java
java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }

find_java() {
  local candidates=() home major wanted="Java $JAVA_MIN${JAVA_MAX:+ to $JAVA_MAX}${JAVA_MAX:-" or newer"}"
  [ -n "${OPENSEARCH_JAVA_HOME:-}" ] && candidates+=("$OPENSEARCH_JAVA_HOME")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  for home in ${JAVA_SEARCH_DIRS:-/usr/lib/jvm/*}; do [ -x "$home/bin/java" ] && candidates+=("$home"); done
  for home in "${candidates[@]}"; do
    [ -x "$home/bin/java" ] || continue
    major=$(java_major "$home")
    [ -n "$major" ] && [ "$major" -ge "$JAVA_MIN" ] || continue
    [ -z "$JAVA_MAX" ] || [ "$major" -le "$JAVA_MAX" ] || continue
    echo "$home"; return 0
  done
  die "OpenSearch $VERSION needs $wanted; none found (looked at OPENSEARCH_JAVA_HOME, JAVA_HOME and" \
      "${JAVA_SEARCH_DIRS:-/usr/lib/jvm/*}). Install a JDK $JAVA_MIN${JAVA_MAX:+-$JAVA_MAX}${JAVA_MAX:-+} and set OPENSEARCH_JAVA_HOME."
}

# ------------------------------------------------------------------------------------------- artifacts
pinned_sha256() { printf '%s\n' "$ARTIFACT_SHA256" | awk -v f="$1" '$2 == f { print $1 }'; }

# fetch GROUP ARTIFACT VERSION EXT [CLASSIFIER] -> prints the local path of a file whose sha256 is the one
# pinned in versions.env (checked on download and on every use)
fetch() {
  local group=$1 artifact=$2 version=$3 ext=$4 classifier=${5:-}
  local file="$artifact-$version${classifier:+-$classifier}.$ext"
  local coordinate="$group:$artifact:$version${classifier:+:$classifier}:$ext"
  local url="$MAVEN_REPO/${group//.//}/$artifact/$version/$file"
  local target="$DOWNLOADS/$file" target_unverified expected actual code
  expected=$(pinned_sha256 "$file")
  if [ ! -s "$target" ]; then
    mkdir -p "$DOWNLOADS"
    say "downloading $coordinate"
    code=$(curl -sSL --retry 3 -w '%{http_code}' -o "$target.part" "$url") || code=${code:-000}
    if [ "$code" != 200 ]; then
      rm -f "$target.part"
      die "artifact $coordinate does not resolve (HTTP $code from $url)"
    fi
    mv "$target.part" "$target.unverified"
    target_unverified=$target.unverified
  else
    target_unverified=$target
  fi
  actual=$(sha256sum "$target_unverified" | cut -c1-64)
  if [ -z "$expected" ]; then
    rm -f "$target.unverified"
    die "no sha256 pinned for $file in opensearch/versions.env (ARTIFACT_SHA256); refusing to use it." \
        "Verify it and add the line: $actual  $file"
  fi
  if [ "$actual" != "$expected" ]; then
    rm -f "$target_unverified"
    die "sha256 mismatch for $coordinate from $MAVEN_REPO: expected $expected (versions.env), got $actual;" \
        "the file was deleted"
  fi
  [ "$target_unverified" = "$target" ] || mv "$target_unverified" "$target"
  echo "$target"
}

# an exclusive lock on the cache while assembling: two starts at once must not build the same folder
with_cache_lock() {
  local lock
  exec {lock}>"$CACHE/.lock"
  flock "$lock"
  "$@"
  exec {lock}>&-
}

# Bump when the assembly changes: a home assembled by an older recipe is assembled again.
ASSEMBLY_RECIPE=2

assemble() {
  local recipe="recipe $ASSEMBLY_RECIPE; plugins: ${PLUGINS:-none}"
  [ "$(cat "$NODE_HOME/.ko-sparse-assembled" 2>/dev/null)" = "$recipe" ] && return 0
  local java=$1 work home zip plugin
  say "assembling OpenSearch $VERSION (plugins: ${PLUGINS:-none}) in $NODE_HOME (first start only)"
  rm -rf "$CACHE"/assemble.* "$CACHE"/libtorch.*  # left over by an interrupted assembly (we hold the lock)
  work=$(mktemp -d "$CACHE/assemble.XXXXXX")
  zip=$(fetch org.opensearch.distribution.integ-test-zip opensearch "$VERSION" zip)
  unzip -q "$zip" -d "$work"
  home="$work/opensearch-$VERSION"
  add_modules "$home"
  for plugin in $PLUGINS; do
    zip=$(fetch org.opensearch.plugin "$plugin" "$PLUGIN_VERSION" zip)
    say "installing plugin $plugin"
    OPENSEARCH_JAVA_HOME=$java "$home/bin/opensearch-plugin" install --batch "file://$zip" >"$work/plugin.log" 2>&1 \
      || { cat "$work/plugin.log" >&2; die "could not install plugin $plugin"; }
  done
  chmod -R u+rwX,go+rX,go-w "$home"
  mkdir -p "$CACHE/dist"
  rm -rf "$NODE_HOME"
  mv "$home" "$NODE_HOME"
  rm -rf "$work"
  echo "$recipe" > "$NODE_HOME/.ko-sparse-assembled"
}

# The 2.19 integ-test-zip ships no module but transport-netty4; neural-search needs mapper-extras
# (rank_features), k-NN extends lang-painless, ML-Commons deletes models with reindex's delete-by-query.
# 3.6's zip has them all.
add_modules() {
  local home=$1
  [ -d "$home/modules/mapper-extras" ] || module_from_jars "$home" mapper-extras \
    org.opensearch.index.mapper.MapperExtrasPlugin "org.opensearch.plugin:mapper-extras-client:$VERSION"
  [ -d "$home/modules/lang-painless" ] || {
    module_from_jars "$home" lang-painless org.opensearch.painless.PainlessPlugin \
      "org.opensearch.plugin:lang-painless:$VERSION" "org.opensearch.plugin:opensearch-scripting-painless-spi:$VERSION" \
      "org.antlr:antlr4-runtime:$SECURE_ANTLR_VERSION" "org.ow2.asm:asm:$SECURE_ASM_VERSION" \
      "org.ow2.asm:asm-util:$SECURE_ASM_VERSION" "org.ow2.asm:asm-tree:$SECURE_ASM_VERSION" \
      "org.ow2.asm:asm-commons:$SECURE_ASM_VERSION" "org.ow2.asm:asm-analysis:$SECURE_ASM_VERSION"
    # painless compiles scripts to classes in their own class loader
    printf 'grant {\n  permission java.lang.RuntimePermission "createClassLoader";\n  %s\n};\n' \
      'permission java.lang.RuntimePermission "getClassLoader";' > "$home/modules/lang-painless/plugin-security.policy"
  }
  [ -d "$home/modules/reindex" ] || {
    # shellcheck disable=SC2086 # one coordinate per word
    module_from_jars "$home" reindex org.opensearch.index.reindex.ReindexPlugin \
      "org.opensearch.plugin:reindex-client:$VERSION" "org.opensearch.client:opensearch-rest-client:$VERSION" \
      "org.opensearch:opensearch-ssl-config:$VERSION" $SECURE_REINDEX_JARS
    # reindex from a remote cluster opens connections
    printf 'grant {\n  permission java.net.SocketPermission "*", "connect";\n};\n' \
      > "$home/modules/reindex/plugin-security.policy"
  }
}

module_from_jars() {
  local home=$1 name=$2 classname=$3 coordinate group artifact version
  shift 3
  mkdir -p "$home/modules/$name"
  for coordinate in "$@"; do
    IFS=: read -r group artifact version <<<"$coordinate"
    cp "$(fetch "$group" "$artifact" "$version" jar)" "$home/modules/$name/"
  done
  cat > "$home/modules/$name/plugin-descriptor.properties" <<EOF
description=$name, rebuilt by ko-sparse from its Maven Central jars
version=$VERSION
name=$name
classname=$classname
java.version=11
opensearch.version=$VERSION
custom.foldername=
extended.plugins=
has.native.controller=false
EOF
}

# libtorch for ML-Commons' DJL engine: DJL would download it from publish.djl.ai on first deploy, which
# fails offline, so it comes from Maven Central, with the JNI beside it as <DJL version>-libdjl_torch.so
# (the first place DJL looks), in a folder only root can write, named by PYTORCH_LIBRARY_PATH.
prepare_libtorch() {
  local java=$1 native jni work dir build="jni $JNI"
  [ -z "$JNI_BRIDGE" ] || build="$build, bridge $(sha256sum "$HERE/$JNI_BRIDGE" | cut -c1-64)"
  [ "$(cat "$LIBTORCH/.ko-sparse-complete" 2>/dev/null)" = "$build" ] && return 0
  native=$(fetch ai.djl.pytorch pytorch-native-cpu "$TORCH" jar linux-x86_64)
  jni=$(fetch ai.djl.pytorch pytorch-jni "$JNI" jar)
  work=$(mktemp -d "$CACHE/libtorch.XXXXXX")
  unzip -q "$native" "pytorch/cpu/linux-x86_64/*" -d "$work"
  dir=$work/pytorch/cpu/linux-x86_64
  if [ -z "$JNI_BRIDGE" ]; then
    unzip -p "$jni" jnilib/linux-x86_64/cpu/libdjl_torch.so > "$dir/$DJL_VERSION-libdjl_torch.so"
  else
    # an older JNI under its own soname, and the bridge (linked to it) under the name DJL looks for
    command -v cc >/dev/null || die "the $PROFILE profile builds a small JNI bridge for libtorch $TORCH: install a C compiler (cc)"
    unzip -p "$jni" jnilib/linux-x86_64/cpu/libdjl_torch.so > "$dir/libdjl_torch.so"
    cc -O2 -shared -fPIC -I"$java/include" -I"$java/include/linux" "$HERE/$JNI_BRIDGE" "$dir/libdjl_torch.so" \
      -Wl,-rpath,'$ORIGIN' -o "$dir/$DJL_VERSION-libdjl_torch.so" || die "could not compile $HERE/$JNI_BRIDGE"
  fi
  chmod -R u+rwX,go+rX,go-w "$work"
  echo "$build" > "$dir/.ko-sparse-complete"
  mkdir -p "$CACHE/libtorch"
  rm -rf "$LIBTORCH"
  mv "$dir" "$LIBTORCH"
  rm -rf "$work"
}

# ---------------------------------------------------------------------------------- users and folders
is_root() { [ "$(id -u)" = 0 ]; }

ensure_node_user() {
  is_root || return 0
  id -u "$NODE_USER" >/dev/null 2>&1 && return 0
  say "creating system user $NODE_USER (OpenSearch refuses to run as root)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$NODE_USER" \
    || die "cannot create user $NODE_USER; run as a non-root user or set KO_SPARSE_OPENSEARCH_USER"
}

as_node_user() { if is_root; then runuser -u "$NODE_USER" -- "$@"; else "$@"; fi; }

# Folders root writes into must be root's and writable by nobody else: a node user who could write
# there could plant a symlink that redirects root's write.
check_root_owned() {
  is_root || return 0
  local path
  for path in "$@"; do
    [ -L "$path" ] && die "$path is a symbolic link; refusing to write through it as root"
    [ "$(stat -c %u "$path")" = 0 ] || die "$path is not owned by root; refusing to write there as root"
    [ -z "$(find "$path" -maxdepth 0 -perm /022)" ] || die "$path is writable by others; refusing to write there as root"
  done
}

# The instance folder is root's; data, logs and run inside it are the node user's.
prepare_instance() {
  local instance=$1 folder group
  mkdir -p "$CACHE/instances" "$instance"
  if is_root; then
    # instances made by older versions of this script belonged to the node user
    [ "$(stat -c %u "$instance")" = 0 ] || { chown -h root:root "$instance"; chmod 755 "$instance"; }
    check_root_owned "$CACHE" "$CACHE/instances" "$instance"
    group=$(id -gn "$NODE_USER")
    for folder in data logs run; do
      [ -L "$instance/$folder" ] && rm -f "$instance/$folder"
      [ -d "$instance/$folder" ] || install -d -m 750 -o "$NODE_USER" -g "$group" "$instance/$folder"
    done
  else
    mkdir -p "$instance/data" "$instance/logs" "$instance/run"
  fi
}

# ------------------------------------------------------------------------------------ secure profile
# A CA and a node certificate (serverAuth + clientAuth for TLS between nodes, SAN localhost/127.0.0.1),
# made once; the CA key never leaves TLS_DIR (root only), clients trust TLS_DIR/root-ca.pem.
make_certificates() {
  [ -f "$TLS_DIR/node.pem" ] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the secure profile"
  say "making a CA and a node certificate in $TLS_DIR"
  local work
  work=$(mktemp -d "$FIRST_INSTANCE/tls.XXXXXX")
  (
    cd "$work"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out root-ca-key.pem 2>/dev/null
    openssl req -x509 -new -key root-ca-key.pem -sha256 -days 3650 -subj "/O=ko-sparse/OU=ko-sparse/CN=ko-sparse local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out root-ca.pem
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out node-key.pem 2>/dev/null
    openssl req -new -key node-key.pem -subj "/O=ko-sparse/OU=ko-sparse/CN=ko-sparse-node" -out node.csr
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" > node.ext
    openssl x509 -req -in node.csr -CA root-ca.pem -CAkey root-ca-key.pem -CAcreateserial -sha256 -days 825 \
      -extfile node.ext -out node.pem 2>/dev/null
    rm -f node.csr node.ext root-ca.srl
    chmod 600 root-ca-key.pem node-key.pem
    chmod 644 root-ca.pem node.pem
  ) || die "openssl could not make the certificates"
  chmod 755 "$work"
  rm -rf "$TLS_DIR"
  mv "$work" "$TLS_DIR"
}

# Random passwords for admin and ko-sparse-reader, made once, readable by their owner only.
make_credentials() {
  [ -s "$CREDENTIALS" ] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the secure profile"
  local tmp
  tmp=$(mktemp "$FIRST_INSTANCE/credentials.XXXXXX")
  chmod 600 "$tmp"
  printf 'admin=%s\nko-sparse-reader=%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" > "$tmp"
  mv "$tmp" "$CREDENTIALS"
}

# the user's password; the name is matched as a literal string, never as a pattern
password_of() {
  KO_SPARSE_USER=$1 awk '{ user = ENVIRON["KO_SPARSE_USER"] } index($0, user "=") == 1 { print substr($0, length(user) + 2) }' \
    "$CREDENTIALS"
}

# bcrypt hash with the security plugin's own tool (the password goes through the environment, not argv)
bcrypt_hash() {
  KO_SPARSE_HASH_PASSWORD=$1 OPENSEARCH_JAVA_HOME=$2 \
    bash "$NODE_HOME/plugins/opensearch-security/tools/hash.sh" -env KO_SPARSE_HASH_PASSWORD 2>/dev/null | tail -n 1
}

write_security_config() {
  local conf=$1 java=$2 template
  mkdir -p "$conf/opensearch-security"
  for template in "$HERE/profiles/secure-security"/*.yml; do cp "$template" "$conf/opensearch-security/"; done
  # our roles go after the plugin's own (ml_full_access, ml_read_access, ...)
  cat "$NODE_HOME/config/opensearch-security/roles.yml" "$HERE/profiles/secure-security/roles.yml" \
    > "$conf/opensearch-security/roles.yml"
  sed -i -e "s#@ADMIN_HASH@#$(bcrypt_hash "$(password_of admin)" "$java")#" \
         -e "s#@READER_HASH@#$(bcrypt_hash "$(password_of ko-sparse-reader)" "$java")#" \
         "$conf/opensearch-security/internal_users.yml"
  grep -q '"\$2[aby]\$' "$conf/opensearch-security/internal_users.yml" || die "could not hash the passwords"
  cp "$TLS_DIR/root-ca.pem" "$TLS_DIR/node.pem" "$TLS_DIR/node-key.pem" "$conf/"
}

# ------------------------------------------------------------------------------------ node config
# Each node gets its own config folder (OPENSEARCH_PATH_CONF), rewritten by root at every start and
# readable, not writable, by the node user.
write_config() {
  local i=$1 java=$2 instance conf tmp port transport seeds="" j
  instance=$(node_instance "$i")
  conf=$instance/config
  port=$(node_port "$i")
  transport=$(node_transport "$i")
  tmp=$(mktemp -d "$instance/config.XXXXXX")
  cp -R "$NODE_HOME/config/." "$tmp/"
  rm -f "$tmp/opensearch.keystore"
  sed -i -e "s#logs/#$instance/logs/#g" -e "s#HeapDumpPath=data#HeapDumpPath=$instance/data#" "$tmp/jvm.options"
  if [ ${#NODE_NAMES[@]} -gt 1 ]; then
    for j in "${!NODE_NAMES[@]}"; do seeds="$seeds${seeds:+, }\"127.0.0.1:$(node_transport "$j")\""; done
  fi
  {
    # a node without ML-Commons refuses its settings
    if [[ " $PLUGINS " == *" opensearch-ml-plugin "* ]]; then
      cat "$HERE/opensearch.yml" "$HERE/profiles/$PROFILE.yml"
    else
      cat "$HERE/opensearch.yml" "$HERE/profiles/$PROFILE.yml" | grep -v '^plugins\.ml_commons\.'
    fi
    printf '# ---- this node ----\n'
    printf 'node.name: %s\nhttp.port: %s\npath.data: %s\npath.logs: %s\n' "${NODE_NAMES[$i]}" "$port" \
      "$instance/data" "$instance/logs"
    [ -z "$transport" ] || printf 'transport.port: %s\n' "$transport"
    [ -z "${NODE_ROLES[$i]}" ] || printf 'node.roles: [%s]\n' "${NODE_ROLES[$i]}"
    [ -z "$seeds" ] || printf 'discovery.seed_hosts: [%s]\n' "$seeds"
  } >> "$tmp/opensearch.yml"
  [ "$SCHEME" = https ] && write_security_config "$tmp" "$java"
  if [ -f "$conf/opensearch.keystore" ] && [ ! -L "$conf/opensearch.keystore" ]; then
    cp "$conf/opensearch.keystore" "$tmp/"
  else
    OPENSEARCH_PATH_CONF=$tmp OPENSEARCH_JAVA_HOME=$java "$NODE_HOME/bin/opensearch-keystore" create >/dev/null 2>&1 \
      || die "could not create the keystore in $tmp"
  fi
  if is_root; then
    chown -R "root:$(id -gn "$NODE_USER")" "$tmp"
    chmod -R u+rwX,g+rX,g-w,o-rwx "$tmp"
  fi
  rm -rf "$conf"
  mv "$tmp" "$conf"
}

# --------------------------------------------------------------------------------------- processes
# The pid of node I's OpenSearch: a java process of RUN_AS whose executable is the java this script
# started it with and whose command line carries node I's config folder. Pid files are written by the
# node user, so they are never trusted: /proc decides.
node_pid() {
  local instance conf java pid
  instance=$(node_instance "$1")
  conf=$instance/config
  [ -f "$instance/java" ] || return 1
  java=$(cat "$instance/java")
  for pid in $(pgrep -u "$RUN_AS" -x java 2>/dev/null); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$java" ] || continue
    if tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "-Dopensearch.path.conf=$conf"; then
      echo "$pid"; return 0
    fi
  done
  return 1
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# curl for this profile: the CA, and admin's password from a root-only netrc file (never in argv)
cluster_curl() {
  if [ "$SCHEME" = https ]; then
    curl -s --max-time "${CURL_TIMEOUT:-5}" --cacert "$TLS_DIR/root-ca.pem" --netrc-file "$FIRST_INSTANCE/netrc" "$@"
  else
    curl -s --max-time "${CURL_TIMEOUT:-5}" "$@"
  fi
}

write_netrc() {
  local tmp
  tmp=$(mktemp "$FIRST_INSTANCE/netrc.XXXXXX")
  chmod 600 "$tmp"
  printf 'machine 127.0.0.1 login admin password %s\n' "$(password_of admin)" > "$tmp"
  mv "$tmp" "$FIRST_INSTANCE/netrc"
}

health() {
  cluster_curl "$URL/_cluster/health?wait_for_status=${1:-green}&timeout=${2:-1s}&wait_for_nodes=${#NODE_NAMES[@]}"
}

node_log() {
  local instance
  instance=$(node_instance "$1")
  echo "$instance/logs/$CLUSTER_NAME.log"
}

# Read as the node user: a log it owns may be a symlink to a file only root should read.
log_tail() {
  local i file
  for i in "${!NODE_NAMES[@]}"; do
    file=$(node_log "$i")
    [ -e "$file" ] || continue
    say "last ${LINES:-60} lines of $file:"
    as_node_user tail -n "${LINES:-60}" -- "$file" >&2 || true
  done
}

start_node() {
  local i=$1 java=$2 instance port transport
  instance=$(node_instance "$i")
  port=$(node_port "$i")
  transport=$(node_transport "$i")
  port_taken "$port" && die "port $port is already in use by another process; stop it or set KO_SPARSE_OPENSEARCH_PORT"
  if [ -n "$transport" ] && port_taken "$transport"; then
    die "transport port $transport is already in use; stop that process or set KO_SPARSE_OPENSEARCH_TRANSPORT_PORT"
  fi
  prepare_instance "$instance"
  write_config "$i" "$java"
  readlink -f "$java/bin/java" > "$instance/java"
  local extra=() setting
  for setting in ${KO_SPARSE_OPENSEARCH_SETTINGS:-}; do extra+=(-E "$setting"); done
  say "starting ${NODE_NAMES[$i]} (OpenSearch $VERSION, Java $(java_major "$java"), heap $HEAP) on $(node_url "$i")" \
      "${KO_SPARSE_OPENSEARCH_SETTINGS:+with $KO_SPARSE_OPENSEARCH_SETTINGS}"
  # stdout.log is root's, in root's folder; the node inherits the open file, not the path
  : > "$instance/stdout.log"
  as_node_user env OPENSEARCH_PATH_CONF="$instance/config" OPENSEARCH_JAVA_HOME="$java" \
    OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP -DPYTORCH_LIBRARY_PATH=$LIBTORCH -DPYTORCH_FLAVOR=cpu ${OPENSEARCH_JAVA_OPTS:-}" \
    PYTORCH_LIBRARY_PATH="$LIBTORCH" PYTORCH_VERSION="$TORCH" PYTORCH_FLAVOR=cpu \
    "$NODE_HOME/bin/opensearch" -d -p "$instance/run/opensearch.pid" "${extra[@]}" >"$instance/stdout.log" 2>&1 \
    || { cat "$instance/stdout.log" >&2; log_tail; die "the node did not start"; }
}

start() {
  local java i pid missing=()
  for i in "${!NODE_NAMES[@]}"; do node_pid "$i" >/dev/null || missing+=("$i"); done
  if [ ${#missing[@]} = 0 ]; then
    say "already running ($PROFILE profile) on $URL"
    return 0
  fi
  command -v curl >/dev/null || die "curl is needed"
  command -v unzip >/dev/null || die "unzip is needed"
  java=$(find_java)
  ensure_node_user
  check_root_owned "$CACHE"
  with_cache_lock assemble "$java"
  with_cache_lock prepare_libtorch "$java"
  if [ "$SCHEME" = https ]; then
    prepare_instance "$FIRST_INSTANCE"
    make_certificates
    make_credentials
    write_netrc
  fi
  for i in "${missing[@]}"; do start_node "$i" "$java"; done
  local waited=0
  until health yellow 1s | grep -q '"status":"\(green\|yellow\)"'; do
    for i in "${!NODE_NAMES[@]}"; do
      if ! node_pid "$i" >/dev/null && [ "$waited" -gt 5 ]; then
        cat "$(node_instance "$i")/stdout.log" >&2 || true
        log_tail; die "${NODE_NAMES[$i]} exited during start-up"
      fi
    done
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      log_tail; die "the cluster had no active primaries (or not all ${#NODE_NAMES[@]} nodes) after ${START_TIMEOUT}s"
    fi
    sleep 2; waited=$((waited + 2))
  done
  replicas_template
  local status
  status=$(CURL_TIMEOUT=15 health green 10s | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
  pid=$(node_pid 0)
  if [ "$status" = green ]; then
    say "green after ${waited}s: $URL (pid $pid, $PROFILE profile)"
  else
    say "up after ${waited}s but $status: indices created with replicas before this start cannot be" \
        "assigned on one data node (set their number_of_replicas to 0): $URL (pid $pid)"
  fi
}

# One data node cannot hold replicas, and cluster.default_number_of_replicas does not reach indices created
# with explicit settings (seen on 3.6.0): a catch-all template keeps every new index green. The ml-cluster
# profile's template gives new indices 3 shards and 1 replica instead (explicit settings still win).
replicas_template() {
  local name=ko-sparse-single-node settings='{"number_of_replicas": 0}'
  if [ "$PROFILE" = ml-cluster ]; then
    name=ko-sparse-cluster settings='{"number_of_shards": 3, "number_of_replicas": 1}'
  fi
  cluster_curl -X PUT "$URL/_index_template/$name" -H 'Content-Type: application/json' \
    -d "{\"index_patterns\": [\"*\"], \"priority\": 0, \"template\": {\"settings\": $settings}}" \
    | grep -q '"acknowledged":true' || die "could not install the index template $name"
}

stop_node() {
  local i=$1 pid
  if ! pid=$(node_pid "$i"); then
    say "${NODE_NAMES[$i]}: not running"; return 0
  fi
  say "stopping ${NODE_NAMES[$i]} (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 60); do
    [ "$(node_pid "$i" || true)" = "$pid" ] || { say "stopped"; return 0; }
    sleep 1
  done
  say "pid $pid did not stop in 60s; killing it"
  [ "$(node_pid "$i" || true)" = "$pid" ] && kill -9 "$pid" 2>/dev/null || true
}

stop() {
  local i
  for ((i = ${#NODE_NAMES[@]} - 1; i >= 0; i--)); do stop_node "$i"; done
}

status() {
  local i pid down=0
  for i in "${!NODE_NAMES[@]}"; do
    if pid=$(node_pid "$i"); then
      say "${NODE_NAMES[$i]}: running (pid $pid) on $(node_url "$i")"
    else
      say "${NODE_NAMES[$i]}: not running"; down=1
    fi
  done
  [ "$down" = 0 ] || return 3
  health yellow 1s; echo
}

print_env() {
  local user=${ENV_USER:-admin} password
  if [ "$SCHEME" != https ]; then
    [ -z "$ENV_USER" ] || die "the $PROFILE profile has no users (no security plugin)"
    printf 'export KO_SPARSE_OPENSEARCH_URL=%q; unset OPENSEARCH_USER OPENSEARCH_PASSWORD OPENSEARCH_CA_CERTS\n' "$URL"
    return 0
  fi
  [ -s "$CREDENTIALS" ] || die "the $PROFILE profile has not been started yet: opensearch/local.sh start --profile $PROFILE"
  password=$(password_of "$user")
  [ -n "$password" ] || die "no user '$user' in the $PROFILE profile (admin, ko-sparse-reader)"
  printf 'export KO_SPARSE_OPENSEARCH_URL=%q OPENSEARCH_USER=%q OPENSEARCH_PASSWORD=%q OPENSEARCH_CA_CERTS=%q\n' \
    "$URL" "$user" "$password" "$TLS_DIR/root-ca.pem"
}

node_index() {
  local i
  for i in "${!NODE_NAMES[@]}"; do [ "${NODE_NAMES[$i]}" = "$1" ] && { echo "$i"; return 0; }; done
  die "no node '$1' in the $PROFILE profile (${NODE_NAMES[*]})"
}

list_nodes() {
  local i
  for i in "${!NODE_NAMES[@]}"; do
    printf '%s\t%s\t%s\t%s\n' "${NODE_NAMES[$i]}" "${NODE_ROLES[$i]:-all}" "$(node_url "$i")" "$(node_pid "$i" || echo -)"
  done
}

purge() {
  local i instance
  stop
  for i in "${!NODE_NAMES[@]}"; do
    instance=$(node_instance "$i")
    [ -d "$instance" ] || continue
    say "deleting $instance"
    rm -rf "$instance"
  done
}

case "$COMMAND" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  logs) LINES=${LINES:-100} log_tail ;;
  env) print_env ;;
  purge) purge ;;
  home) echo "$NODE_HOME" ;;
  pid) node_pid "$(node_index "${NODE_NAME:-${NODE_NAMES[0]}}")" || exit 3 ;;
  nodes) list_nodes ;;
  *) usage ;;
esac
