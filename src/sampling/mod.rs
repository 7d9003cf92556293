//! 食品安全抽检 (food sampling) domain, pure: no I/O, no database, no HTTP. The use cases in
//! `ops` load state, call these rules and write what they decide.
//!
//! - [`attachment`]: the sample's photos (site, sample, seal) and lab report PDF: kinds, who
//!   declares them, the declaration's check.
//! - [`categories`]: the 4-level food category tree as data (CSV/XLSX import, the tree rule).
//! - [`form`]: the 抽样单 as a typed value, its tri-state fields ("/" is not "missing") and
//!   the submission check.
//! - [`number`]: 抽样单编号, national-system shape or generated from a configured prefix.
//! - [`custody`]: the chain of custody as append-only events (sealed → … → reported).
//! - [`results`]: lab result items, limits, verdicts and the overall check.
//! - [`results_import`]: result items from a CSV or XLSX file, bounded like the registry import.
//! - [`deadlines`]: the legal deadlines on the working-day calendar.
//! - [`facts`]: the later facts of a 不合格 sample (notified, served, 复检, 异议, 核查处置) and
//!   the rule that orders them.
//! - [`plan`]: sampling plans (a kind of `plan`, drawn by `plan::draw`) and their tasks.

/// An enum with a stable snake_case code and the Chinese label printed on forms; serde
/// accepts either on input.
macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $code:literal, $zh:literal;)+ }) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* #[serde(alias = $zh)] $v,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The stable code (the serde form).
            pub fn code(self) -> &'static str {
                match self { $($name::$v => $code),+ }
            }

            /// The label printed on the form.
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$v => $zh),+ }
            }

            /// Accepts the code or the Chinese label (spaces around ignored).
            pub fn parse(s: &str) -> Option<$name> {
                let s = s.trim();
                Self::ALL.iter().copied().find(|v| v.code() == s || v.label_zh() == s)
            }
        }
    };
}

pub mod announcement;
pub mod attachment;
pub mod categories;
pub mod custody;
pub mod deadlines;
pub mod facts;
pub mod form;
pub mod number;
pub mod plan;
pub mod results;
pub mod results_import;
