//! Graph checks: topological order and cycles.

/// A topological order of nodes `0..n` under `edges` (from, to), or the node indices round
/// one cycle (the first repeated at the end).
pub fn topological_order(n: usize, edges: &[(usize, usize)]) -> Result<Vec<usize>, Vec<usize>> {
    let mut adjacent = vec![Vec::new(); n];
    for &(from, to) in edges {
        adjacent[from].push(to);
    }
    // Iterative depth-first search; a grey node met again closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour = vec![Colour::White; n];
    let mut post_order = Vec::with_capacity(n);
    for start in 0..n {
        if colour[start] != Colour::White {
            continue;
        }
        colour[start] = Colour::Grey;
        let mut stack = vec![(start, 0usize)];
        while let Some(&(node, next)) = stack.last() {
            if let Some(&to) = adjacent[node].get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match colour[to] {
                    Colour::White => {
                        colour[to] = Colour::Grey;
                        stack.push((to, 0));
                    }
                    Colour::Grey => {
                        let at = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[at..].iter().map(|&(n, _)| n).collect();
                        cycle.push(to);
                        return Err(cycle);
                    }
                    Colour::Black => {}
                }
            } else {
                colour[node] = Colour::Black;
                post_order.push(node);
                stack.pop();
            }
        }
    }
    post_order.reverse();
    Ok(post_order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_a_diamond_and_finds_cycles() {
        let order = topological_order(4, &[(0, 1), (0, 2), (1, 3), (2, 3)]);
        let order = order.unwrap_or_default();
        let pos = |n: usize| order.iter().position(|&x| x == n);
        assert!(pos(0) < pos(1) && pos(1) < pos(3) && pos(2) < pos(3));
        assert_eq!(
            topological_order(3, &[(0, 1), (1, 2), (2, 1)]),
            Err(vec![1, 2, 1])
        );
        assert_eq!(topological_order(1, &[(0, 0)]), Err(vec![0, 0]));
    }
}
