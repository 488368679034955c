//! Roles and the one permission table (`docs/staff.md`, "Roles and permissions").
//!
//! A staff credential names one role as text. Text this version does not know is no role at all
//! ([`UnknownRole`]): it grants nothing. Every command and view that needs a right asks
//! [`Role::permits`], so the table below is the whole policy.

use std::fmt;
use std::str::FromStr;

/// A staff member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reception: runs the check-in kiosk.
    Reception,
    /// Clinician: scans codes, reads records within consent, emergency access.
    Clinician,
    /// Administrator: cards, trust list, records.
    Admin,
}

/// Something a role may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run the check-in kiosk (open it for patients' self-service).
    RunKiosk,
    /// Scan a patient's code at the bedside and read the records it opens (within consent).
    ScanAndRead,
    /// Open a patient's emergency data set without their code (break the glass).
    EmergencyAccess,
    /// Issue, revoke or unblock patient and staff cards.
    ManageCards,
    /// Change the trust list.
    EditTrust,
    /// Add records.
    AddRecords,
    /// Open the admin view, read the audit log and its alerts.
    Administer,
}

impl Action {
    /// Every action, in the order of the permission table.
    pub const ALL: [Action; 7] = [
        Action::RunKiosk,
        Action::ScanAndRead,
        Action::EmergencyAccess,
        Action::ManageCards,
        Action::EditTrust,
        Action::AddRecords,
        Action::Administer,
    ];

    /// A short name for messages and the audit log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RunKiosk => "run-kiosk",
            Action::ScanAndRead => "scan-and-read",
            Action::EmergencyAccess => "emergency-access",
            Action::ManageCards => "manage-cards",
            Action::EditTrust => "edit-trust",
            Action::AddRecords => "add-records",
            Action::Administer => "administer",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permission table: which role may do what. Nothing else grants a right.
const TABLE: [(Role, &[Action]); 3] = [
    (Role::Reception, &[Action::RunKiosk]),
    (Role::Clinician, &[Action::ScanAndRead, Action::EmergencyAccess]),
    (Role::Admin, &[Action::ManageCards, Action::EditTrust, Action::AddRecords, Action::Administer]),
];

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Reception, Role::Clinician, Role::Admin];

    /// The stored name (in the staff credential and the audit log).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reception => "reception",
            Role::Clinician => "clinician",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do `action` (the permission table).
    #[must_use]
    pub fn permits(self, action: Action) -> bool {
        TABLE.iter().any(|(r, actions)| *r == self && actions.contains(&action))
    }

    /// The roles that may do `action` (for messages: "needs a clinician card").
    #[must_use]
    pub fn allowed(action: Action) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.permits(action)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name this version does not know: no rights.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown staff role {got:?} (known: reception, clinician, admin): a role this version does not know grants no rights")]
pub struct UnknownRole {
    /// What was given (cut to 64 characters).
    pub got: String,
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole { got: s.chars().take(64).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_right_belongs_to_exactly_the_documented_roles() {
        // The table of docs/staff.md, row by row.
        let expected: [(Action, &[Role]); 7] = [
            (Action::RunKiosk, &[Role::Reception]),
            (Action::ScanAndRead, &[Role::Clinician]),
            (Action::EmergencyAccess, &[Role::Clinician]),
            (Action::ManageCards, &[Role::Admin]),
            (Action::EditTrust, &[Role::Admin]),
            (Action::AddRecords, &[Role::Admin]),
            (Action::Administer, &[Role::Admin]),
        ];
        for (action, roles) in expected {
            assert_eq!(Role::allowed(action), roles.to_vec(), "{action}");
        }
    }

    #[test]
    fn unknown_role_text_is_no_role() {
        for bad in ["", "Clinician", "clinician ", "root", "admin\0", "doctor"] {
            assert!(bad.parse::<Role>().is_err(), "{bad:?}");
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }
}
