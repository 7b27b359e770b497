//! Sort-order arithmetic of board columns: sparse positions with gaps of
//! [`GAP`] so a drag and drop usually rewrites one row; when two neighbours
//! leave no room, the whole column is renumbered.

/// Distance between neighbours after a renumbering, and below the last card.
pub const GAP: i32 = 1000;

/// The position of a card dropped between `above` and `below` (either may be
/// absent: top or bottom of the column, or an empty column). `None` means
/// there is no room left and the column must be renumbered.
pub fn between(above: Option<i32>, below: Option<i32>) -> Option<i32> {
    match (above, below) {
        (None, None) => Some(GAP),
        (Some(above), None) => above.checked_add(GAP),
        (None, Some(below)) => below.checked_sub(GAP),
        (Some(above), Some(below)) => {
            let (above, below) = (i64::from(above), i64::from(below));
            (below - above >= 2).then(|| ((above + below) / 2) as i32)
        }
    }
}

/// Fresh positions for a column of `len` cards, top to bottom.
pub fn renumbered(len: usize) -> impl Iterator<Item = i32> {
    (1..=len).map(|i| {
        i32::try_from(i)
            .unwrap_or(i32::MAX / GAP)
            .saturating_mul(GAP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_column_and_ends() {
        assert_eq!(between(None, None), Some(1000));
        assert_eq!(between(Some(3000), None), Some(4000));
        assert_eq!(between(None, Some(1000)), Some(0));
    }

    #[test]
    fn midpoint_until_the_gap_runs_out() {
        assert_eq!(between(Some(1000), Some(2000)), Some(1500));
        assert_eq!(between(Some(1000), Some(1002)), Some(1001));
        assert_eq!(between(Some(1000), Some(1001)), None);
        assert_eq!(between(Some(5), Some(5)), None);
    }

    #[test]
    fn overflow_asks_for_renumbering() {
        assert_eq!(between(Some(i32::MAX - 10), None), None);
        assert_eq!(between(None, Some(i32::MIN + 10)), None);
        assert_eq!(
            between(Some(i32::MAX - 3), Some(i32::MAX)),
            Some(i32::MAX - 2)
        );
    }

    #[test]
    fn renumbering_restores_gaps() {
        assert_eq!(renumbered(3).collect::<Vec<_>>(), [1000, 2000, 3000]);
    }

    #[test]
    fn repeated_drops_between_the_same_neighbours_terminate() {
        // Dropping into the same slot halves the gap each time: ~10 drops of
        // one write each before a renumbering is needed.
        let (above, mut below) = (1000, 2000);
        let mut drops = 0;
        while let Some(position) = between(Some(above), Some(below)) {
            below = position;
            drops += 1;
        }
        assert_eq!(drops, 9);
    }
}
