//! 整改 → 复查: follow-up orders and their recheck tasks.
//!
//! The seam the review use case calls when it approves an inspection; the follow-up work fills
//! it in (opening the order with its working-day deadline inside the approval's transaction).

use sqlx::AnyConnection;

use crate::audit::Ctx;
use crate::checklist::rule::ResultCode;

pub use crate::followup::FollowupOrder;

/// Called by `ops::review` inside its write transaction when an inspection is approved with
/// `result` (the override if any, else the computed one). Opens a follow-up for 基本符合 and
/// 不符合 and returns its id; nothing for 符合.
pub async fn open_on_approval(
    _conn: &mut AnyConnection,
    _ctx: &Ctx,
    _inspection_id: &str,
    _result: ResultCode,
    _order: &FollowupOrder,
) -> super::Result<Option<String>> {
    Ok(None)
}
