//! The parser against a corpus of real-looking Dockerfiles (tests/dockerfiles):
//! what each parses to, and the line and message of the broken ones.

use berth_build::expand;
use berth_build::instruction::{CmdForm, Instruction, parse_plan};

fn load(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/dockerfiles/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn keywords(name: &str) -> Vec<Vec<String>> {
    let p = parse_plan(&load(name)).unwrap();
    p.stages.iter().map(|s| std::iter::once(&s.from).chain(&s.steps).map(|st| st.node.keyword.clone()).collect()).collect()
}

#[test]
fn go_service_two_stages_with_meta_args() {
    let p = parse_plan(&load("go-service.Dockerfile")).unwrap();
    assert_eq!(p.meta_args, vec![("GO_VERSION".into(), Some("1.22".into())), ("ALPINE_VERSION".into(), Some("3.19".into()))]);
    assert_eq!(keywords("go-service.Dockerfile"), vec![
        vec!["FROM", "WORKDIR", "ENV", "COPY", "RUN", "COPY", "ARG", "RUN"],
        vec!["FROM", "RUN", "COPY", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD"],
    ]);
    let from = match &p.stages[0].from.inst {
        Instruction::From { image, name, .. } => (expand::word(image, '\\', &vec![("GO_VERSION".into(), "1.22".into()), ("ALPINE_VERSION".into(), "3.19".into())]).unwrap(), name.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(from, ("golang:1.22-alpine3.19".into(), Some("build".into())));
    let run = &p.stages[0].steps[6];
    assert_eq!(run.node.line, 13);
    match &run.inst {
        Instruction::Run { cmd: CmdForm::Shell(s), .. } => assert!(s.contains("-trimpath       -ldflags") && s.ends_with("./cmd/server")),
        other => panic!("{other:?}"),
    }
    match &p.stages[0].steps[1].inst {
        Instruction::Env(kv) => assert_eq!(kv, &vec![("CGO_ENABLED".into(), "0".into()), ("GOOS".into(), "linux".into())]),
        other => panic!("{other:?}"),
    }
    match &p.stages[1].steps[1].inst {
        Instruction::Copy(c) => {
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.chown.as_deref(), Some("app:app"));
            assert_eq!((c.srcs.clone(), c.dest.clone()), (vec!["/out/server".to_owned()], "/usr/local/bin/server".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    match &p.stages[1].steps[4].inst {
        Instruction::Healthcheck(h) => {
            assert_eq!(h.interval.as_deref(), Some("30s"));
            assert_eq!(h.cmd, Some(CmdForm::Shell("wget -qO- http://localhost:8080/healthz || exit 1".into())));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn python_app_comments_in_continuations_and_legacy_env() {
    let p = parse_plan(&load("python-app.Dockerfile")).unwrap();
    let steps = &p.stages[0].steps;
    match &steps[0].inst {
        Instruction::Label(kv) => assert_eq!(kv.len(), 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(steps[2].inst, Instruction::Env(vec![("APP_HOME".into(), "/srv/app".into())]));
    match &steps[3].inst {
        Instruction::Run { cmd: CmdForm::Shell(s), .. } => {
            assert!(!s.contains("keep the image small"), "comments inside continuations are dropped: {s}");
            assert!(s.ends_with("rm -rf /var/lib/apt/lists/*"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(steps[3].node.line, 10);
    assert_eq!(steps[9].inst, Instruction::Volume(vec!["/srv/app/data".into()]));
    assert_eq!(steps[12].inst, Instruction::Cmd(CmdForm::Shell("gunicorn -b 0.0.0.0:8000 app.wsgi".into())));
}

#[test]
fn heredocs_and_shell() {
    let p = parse_plan(&load("heredoc.Dockerfile")).unwrap();
    let steps = &p.stages[0].steps;
    match &steps[0].inst {
        Instruction::Run { heredocs, .. } => assert_eq!(heredocs[0].content, "set -e\napt-get update\napt-get install -y curl\n"),
        other => panic!("{other:?}"),
    }
    match &steps[1].inst {
        Instruction::Copy(c) => {
            assert_eq!(c.dest, "/etc/app.conf");
            assert!(c.srcs.is_empty());
            assert_eq!(c.heredocs[0].content, "listen = ${PORT}\n");
            assert!(c.heredocs[0].quoted && c.heredocs[0].chomp);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(steps[2].node.line, 11);
    assert_eq!(steps[3].inst, Instruction::Shell(vec!["/bin/bash".into(), "-o".into(), "pipefail".into(), "-c".into()]));
    assert_eq!(steps[4].node.line, 15);
}

#[test]
fn escape_directive_for_windows_paths() {
    let p = parse_plan(&load("windows-escape.Dockerfile")).unwrap();
    assert_eq!(p.escape, '`');
    let steps = &p.stages[0].steps;
    match &steps[1].inst {
        Instruction::Run { cmd: CmdForm::Shell(s), .. } => assert_eq!(s, "New-Item -ItemType Directory C:\\app ;     Set-Location C:\\app"),
        other => panic!("{other:?}"),
    }
    assert_eq!(steps[2].inst, Instruction::Workdir("C:\\app".into()));
}

#[test]
fn onbuild_triggers_lower_case_instructions() {
    assert_eq!(keywords("onbuild-base.Dockerfile"), vec![vec!["FROM", "WORKDIR", "ONBUILD", "ONBUILD", "ONBUILD", "EXPOSE", "CMD"]]);
    let p = parse_plan(&load("onbuild-base.Dockerfile")).unwrap();
    assert_eq!(p.stages[0].steps[2].inst, Instruction::Onbuild("RUN npm ci --omit=dev".into()));
}

#[test]
fn broken_files_name_their_line() {
    let e = |n: &str| parse_plan(&load(n)).unwrap_err().to_string();
    assert_eq!(e("bad-unknown.Dockerfile"), "Dockerfile parse error line 4: unknown instruction: RUNN");
    assert_eq!(e("bad-no-from.Dockerfile"), "Dockerfile parse error line 4: no build stage in current context");
    assert_eq!(e("bad-shell.Dockerfile"), "Dockerfile parse error line 2: SHELL requires the arguments to be in JSON form");
}
