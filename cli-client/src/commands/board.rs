//! `amon board`: the whole board, columns side by side.

use amon_proto::v1::GetBoardRequest;
use clap::Args;
use serde_json::json;

use super::show;
use crate::{board, client::Ctx, json, output};

/// `amon board`.
#[derive(Debug, Args)]
pub struct BoardArgs {
    /// Width to draw in (default: the terminal's, else $COLUMNS, else 120).
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(20..))]
    pub width: Option<u16>,
}

/// Runs `amon board`. With `--json`: `{"columns": [{"status", "tasks"}…]}`.
pub async fn run(ctx: &Ctx, args: BoardArgs) -> anyhow::Result<()> {
    let response = ctx
        .tasks()
        .get_board(GetBoardRequest {})
        .await?
        .into_inner();
    let width = args
        .width
        .map(usize::from)
        .or_else(output::terminal_width)
        .unwrap_or(board::DEFAULT_WIDTH);
    show(
        ctx,
        || json!({ "columns": response.columns.iter().map(json::board_column).collect::<Vec<_>>() }),
        || board::render(&response.columns, width),
    )
}
