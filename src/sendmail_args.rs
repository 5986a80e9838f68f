//! sendmail's command line: `mailer sendmail [-t] [-i] [-oi] [-f FROM] [-F NAME] [RCPT...]`,
//! also entered when the binary is invoked as `sendmail` (sendmail(8)). The command itself is
//! `cmd/sendmail.rs`.
//!
//! Owns the option parsing, which clap cannot do: cron, mutt, git send-email, mailx and
//! PHP's `mail()` pass a zoo of historical options (`-oem`, `-odi`, `-B8BITMIME`,
//! `-FCronDaemon`, …). Those that mean nothing to us are accepted and ignored, as msmtp
//! does; the modes we do not have (`-bs`, `-bp`, `-q`, …) are refused with exit 64.

use crate::error::{Error, Result};

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// `-t`: recipients from the message's To/Cc/Bcc (plus any given as arguments).
    pub extract: bool,
    /// `-i` / `-oi`: a line with a single "." does not end the message.
    pub ignore_dots: bool,
    /// `-f ADDRESS` (or `-r`): the envelope sender.
    pub from: Option<String>,
    /// `-F NAME`: the sender's full name, for a From header mailer adds.
    pub full_name: Option<String>,
    pub recipients: Vec<String>,
}

/// Options taking a value we do not use (the value may be attached or the next argument).
const IGNORED_WITH_VALUE: [char; 9] = ['B', 'N', 'R', 'V', 'L', 'O', 'X', 'h', 'C'];
/// Single-letter options we accept and ignore.
const IGNORED_FLAGS: [char; 5] = ['U', 'G', 'm', 'n', 'x'];

pub fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    let value =
        |it: &mut std::slice::Iter<'_, String>, attached: &str, flag: char| -> Result<String> {
            if !attached.is_empty() {
                return Ok(attached.to_owned());
            }
            it.next().cloned().ok_or_else(|| {
                Error::usage(format!("sendmail option -{flag} needs a value"))
                    .fix(format!("give it as -{flag} VALUE or -{flag}VALUE"))
            })
        };
    while let Some(arg) = it.next() {
        if arg == "--" {
            o.recipients.extend(it.by_ref().cloned());
            break;
        }
        let Some(opt) = arg.strip_prefix('-').filter(|s| !s.is_empty()) else {
            o.recipients.push(arg.clone());
            continue;
        };
        let mut chars = opt.chars();
        let flag = chars.next().expect("non-empty");
        let rest = chars.as_str();
        match flag {
            // Bundled flags, e.g. -ti (mailx, some PHP setups).
            't' | 'i' if opt.chars().all(|c| c == 't' || c == 'i') => {
                o.extract |= opt.contains('t');
                o.ignore_dots |= opt.contains('i');
            }
            'v' => {}
            'f' | 'r' => o.from = Some(value(&mut it, rest, flag)?),
            'F' => o.full_name = Some(value(&mut it, rest, flag)?),
            // -oi is -i; every other -oX (-oem, -odi, -oQ…) is a sendmail.cf setting.
            'o' if rest == "i" => o.ignore_dots = true,
            'o' => {}
            // -bm is "deliver mail", what we do; the other modes are not ours.
            'b' if rest == "m" => {}
            'b' | 'q' | 'I' => return Err(unsupported(arg)),
            'A' => {}
            c if IGNORED_WITH_VALUE.contains(&c) => {
                value(&mut it, rest, c)?;
            }
            c if IGNORED_FLAGS.contains(&c) && rest.is_empty() => {}
            _ => {
                return Err(Error::usage(format!("unknown sendmail option {arg}"))
                    .fix("mailer sendmail understands -t -i -oi -f -F and ignores the usual delivery options; recipients follow"));
            }
        }
    }
    Ok(o)
}

fn unsupported(arg: &str) -> Error {
    Error::usage(format!("sendmail mode {arg} is not supported"))
        .why("mailer sendmail only sends one message read from stdin")
        .fix("use `mailer queue list` / `mailer queue run` for the outbox")
}

/// Reads the message as sendmail does: to end of input, or (without -i) to a line that is
/// a single ".".
pub fn read_message(input: &mut impl std::io::BufRead, ignore_dots: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(format!("cannot read the message from stdin: {e}")))?;
        if n == 0 {
            break;
        }
        if !ignore_dots && (line == b".\n" || line == b".\r\n" || line == b".") {
            break;
        }
        out.extend_from_slice(&line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn what_real_callers_pass() {
        // cron (Debian, cronie)
        let o = p(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"]).unwrap();
        assert_eq!(
            (o.full_name.as_deref(), o.ignore_dots, o.recipients.clone()),
            (Some("CronDaemon"), true, vec!["root".to_owned()])
        );
        // mutt
        let o = p(&["-oem", "-oi", "--", "a@example.com", "b@example.com"]).unwrap();
        assert!(o.ignore_dots);
        assert_eq!(o.recipients, ["a@example.com", "b@example.com"]);
        // git send-email
        let o = p(&["-i", "-f", "me@example.com", "a@example.com"]).unwrap();
        assert_eq!(o.from.as_deref(), Some("me@example.com"));
        // PHP mail(), mailx
        let o = p(&["-t", "-i", "-fme@example.com"]).unwrap();
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.from.as_deref(), Some("me@example.com"));
        let o = p(&[
            "-odi",
            "-N",
            "never",
            "-R",
            "hdrs",
            "-V",
            "envid",
            "-F",
            "Jane Doe",
            "x@example.com",
        ])
        .unwrap();
        assert_eq!(o.full_name.as_deref(), Some("Jane Doe"));
        assert_eq!(o.recipients, ["x@example.com"]);
        // "--" ends options: a recipient may start with '-'.
        assert_eq!(
            p(&["--", "-odd@example.com"]).unwrap().recipients,
            ["-odd@example.com"]
        );
    }

    #[test]
    fn unsupported_modes_and_unknown_options_are_usage_errors() {
        let o = p(&["-ti"]).unwrap();
        assert!(o.extract && o.ignore_dots);
        for args in [
            &["-bs"][..],
            &["-bp"],
            &["-q"],
            &["-q1h"],
            &["-Z"],
            &["-f"],
            &["-tx"],
        ] {
            assert_eq!(
                p(args).unwrap_err().class,
                crate::error::Class::Usage,
                "{args:?}"
            );
        }
    }

    #[test]
    fn a_lone_dot_ends_the_message_unless_i() {
        let input = b"Subject: x\n\nline\n.\nafter\n";
        assert_eq!(
            read_message(&mut &input[..], false).unwrap(),
            b"Subject: x\n\nline\n"
        );
        assert_eq!(read_message(&mut &input[..], true).unwrap(), input);
    }
}

/// Properties over arbitrary command lines and input: what cron, mailers and scripts pass
/// is outside input, so no argument list may panic the parser or be misread.
#[cfg(test)]
mod props {
    use super::*;
    use crate::error::Class;
    use proptest::prelude::*;

    /// Arguments as callers pass them: every option family, attached values, addresses, junk.
    fn arg() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "-t",
                "-i",
                "-oi",
                "-ti",
                "-it",
                "-f",
                "-F",
                "-r",
                "-bm",
                "-bs",
                "-bp",
                "-q",
                "-q1h",
                "-oem",
                "-odi",
                "-B8BITMIME",
                "-N",
                "-R",
                "-V",
                "-v",
                "-U",
                "-x",
                "-A",
                "-Z",
                "--",
                "-",
                "-fme@example.com",
                "-FCron Daemon",
                "-tx",
                "-o",
            ])
            .prop_map(str::to_owned),
            "[a-z]{1,8}@[a-z]{1,8}\\.example",
            "-[ -~]{0,6}",
            any::<String>(),
        ]
    }

    /// Message bytes rich in the lines that matter: lone dots, CRLF, text, anything.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b".\n".to_vec()),
                Just(b".\r\n".to_vec()),
                Just(b".".to_vec()),
                Just(b"..\n".to_vec()),
                "[a-z. :]{0,6}\r?\n".prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
        b.split_inclusive(|c| *c == b'\n')
    }

    fn is_lone_dot(line: &[u8]) -> bool {
        line == b".\n" || line == b".\r\n" || line == b"."
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_command_line_parses_or_is_a_usage_error(args in prop::collection::vec(arg(), 0..8)) {
            if let Err(e) = parse(&args) {
                prop_assert_eq!(e.class, Class::Usage);
                prop_assert!(e.fix.is_some() || e.what.contains("not supported"), "{}", e);
            }
        }

        #[test]
        fn after_a_double_dash_every_argument_is_a_recipient(
            flags in prop::collection::vec(prop::sample::select(vec!["-t", "-i", "-oi", "-oem"]), 0..4),
            rest in prop::collection::vec(any::<String>(), 0..5),
        ) {
            let mut args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            args.push("--".into());
            args.extend(rest.iter().cloned());
            let o = parse(&args).unwrap();
            prop_assert_eq!(o.recipients, rest);
            prop_assert_eq!(o.extract, flags.contains(&"-t"));
            prop_assert_eq!(o.ignore_dots, flags.contains(&"-i") || flags.contains(&"-oi"));
        }

        #[test]
        fn with_i_the_input_is_read_whole(bytes in input()) {
            prop_assert_eq!(read_message(&mut &bytes[..], true).unwrap(), bytes);
        }

        #[test]
        fn without_i_reading_ends_at_the_first_lone_dot(bytes in input()) {
            let out = read_message(&mut &bytes[..], false).unwrap();
            prop_assert!(bytes.starts_with(&out));
            prop_assert!(!lines(&out).any(is_lone_dot));
            // Only a lone dot may end it early.
            if !lines(&bytes).any(is_lone_dot) {
                prop_assert_eq!(out, bytes);
            } else {
                prop_assert!(is_lone_dot(lines(&bytes[out.len()..]).next().unwrap()));
            }
        }
    }
}
