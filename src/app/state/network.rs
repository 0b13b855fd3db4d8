//! The Network pane: the connections the agents report, folded (`network::connections`), as a
//! table or a map; enter opens one connection with the rule that decided it.

use super::ListView;
use crate::network::connections::{Connection, ConnectionKey, Connections};

#[derive(Debug, Clone, Default)]
pub struct NetworkState {
    pub connections: Connections,
    /// The rows as last shown, the most recently seen first (`view` indexes them).
    pub rows: Vec<Connection>,
    pub view: ListView,
    /// The map instead of the table (`m`).
    pub map: bool,
    /// The connection open in full.
    pub opened: Option<ConnectionKey>,
    pub scroll: usize,
}

impl NetworkState {
    /// Takes the fold's rows again, keeping the selected connection selected.
    pub fn refresh(&mut self) {
        let selected = self.view.current().and_then(|i| self.rows.get(i)).map(|c| c.key.clone());
        self.rows = self.connections.rows().into_iter().cloned().collect();
        self.refilter();
        if let Some(key) = selected
            && let Some(row) = self.rows.iter().position(|c| c.key == key)
        {
            self.view.select_row(row);
        }
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.rows.iter().map(Connection::search_text).collect();
        self.view.refilter(texts.into_iter());
    }

    pub fn opened(&self) -> Option<&Connection> {
        let key = self.opened.as_ref()?;
        self.rows.iter().find(|c| &c.key == key)
    }
}
