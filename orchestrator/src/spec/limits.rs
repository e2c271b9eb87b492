//! Every limit on workflow input, in one place. Each is checked at parse time and tested at its
//! edge.
