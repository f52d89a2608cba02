//! Differential: the same busybox script natively in a chroot and under the sentry, in two
//! identical fresh rootfs; the outputs must be identical.

mod common;

use common::*;

fn same(tag: &str, script: &str) {
    let a = busybox_rootfs(&format!("{tag}-native"));
    let b = busybox_rootfs(&format!("{tag}-sentry"));
    let (nst, nout) = sh_native(a.path(), script);
    let (sst, sout, log) = sh_sentry(b.path(), script);
    assert_eq!(
        sout, nout,
        "output differs (left: sentry, right: native)\nstrace:\n{log}"
    );
    assert_eq!(sst.code(), nst.code(), "exit status differs");
    assert!(!nout.is_empty());
}

#[test]
fn echo_and_pipelines() {
    same(
        "pipe",
        r#"echo hello world | tr a-z A-Z | sed 's/WORLD/there/'
seq 1 100 | awk '{s+=$1} END {print s}'
printf 'b\na\nc\n' | sort | uniq -c
x=$(echo sub; echo shell); echo "$x" | wc -l
( cd /tmp && pwd ); pwd
false || echo "false=$?"
"#,
    );
}

#[test]
fn files_create_rename_link() {
    same(
        "files",
        r#"cd /tmp
echo one > a; echo two >> a; cat a
mv a b; ls; test -e a || echo "a gone"
cp b c; cmp b c && echo same
ln b hard; stat -c '%n %h %s %F' b hard
ln -s b soft; ln -s /tmp/c abs; readlink soft abs; cat soft abs
stat -c '%n %F' soft; stat -L -c '%n %F %s' soft
mkdir -p d/e/f; touch d/e/f/g; find d | sort
rm -r d; ls
mkdir x; rmdir x; ls -d x 2>&1 | sed 's/.*x/x/'
chmod 640 c; stat -c '%a' c; chmod u+x,o+r c; stat -c '%a' c
truncate -s 3 c; stat -c '%s' c; cat c; echo
touch -d '2020-01-02 03:04:05' c; stat -c '%Y' c
mkfifo p; stat -c '%F' p
ln -s nowhere dangling; cat dangling 2>&1 | sed 's/.*: //'
mv soft renamed; readlink renamed
cd /; cd tmp; pwd; cd ..; pwd
umask 027; touch u; mkdir ud; stat -c '%n %a' u ud
umask 0; mkfifo f0; echo > f1; stat -c '%n %a' f0 f1
umask 022
ls -1 /tmp | sort
"#,
    );
}

#[test]
fn errors_match() {
    same(
        "errors",
        r#"cat /nonexistent 2>&1
mkdir /tmp 2>&1
rmdir /bin 2>&1
ln -s x /tmp/l; ln -s x /tmp/l 2>&1
cd /nonexistent 2>&1; echo "cd=$?"
/bin/nonexistent 2>&1; echo "exec=$?"
/etc/passwd 2>&1; echo "noexec=$?"
test -x /bin/busybox && echo x-ok
test -w /etc/passwd && echo w-ok
test -d /etc/passwd || echo not-dir
"#,
    );
}
