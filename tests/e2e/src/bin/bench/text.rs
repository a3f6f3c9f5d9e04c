//! Realistic ticket text for the ticket benches: a vocabulary of a few
//! hundred IT-support words drawn with Zipf-like frequencies (the most
//! common word ~1/rank as often as the first), so that a few words
//! ("user", "error", "printer") are in most tickets and most words are rare,
//! as in a real help desk's history. Deterministic (seeded), no `rand`.

/// SplitMix64: small, fast, good enough for benchmark data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// Words of IT support tickets, most common first (the order sets the Zipf
/// rank). None is a Postgres English stop word.
const WORDS: &str = "user error printer email outlook password login vpn network laptop \
    server access issue working unable account screen slow update windows connection reset \
    office teams drive file share folder internet wifi phone install application software \
    license backup restore disk space memory crash freeze restart reboot boot monitor keyboard \
    mouse headset camera microphone meeting calendar mailbox quota attachment spam phishing \
    virus antivirus firewall certificate expired renew domain controller group policy dns dhcp \
    address gateway router switch port cable wireless signal bluetooth driver firmware bios \
    battery charger dock docking station display resolution projector scanner toner paper jam \
    queue spooler print job offline online sync onedrive sharepoint permission denied admin \
    rights mfa authenticator token locked unlock expired sso portal browser chrome edge firefox \
    cache cookie website page loading timeout latency packet loss ping trace route bandwidth \
    database sql query report excel word powerpoint macro template signature footer header \
    calendar invite room booking license activation subscription renewal invoice billing erp \
    crm salesforce sap citrix remote desktop rdp terminal session profile roaming migration \
    upgrade patch hotfix rollback deployment intune autopilot enrollment device mobile iphone \
    android tablet app store notification alert monitoring cpu usage high fan noise overheating \
    power supply ups outage maintenance scheduled ticket request approval manager onboarding \
    offboarding new starter leaver hardware order replacement warranty repair broken cracked \
    spill water damage stolen lost encryption bitlocker recovery key usb storage external \
    mapped network drive letter path shortcut desktop icon missing disappeared corrupted \
    recover deleted recycle bin version history snapshot volume raid controller array degraded \
    rebuild hyper vmware virtual machine host cluster node failover replication storage san \
    nas iscsi lun datastore snapshot consolidation vcenter esxi kernel panic blue death bsod \
    dump event log warning critical service stopped started dependency startup scheduled task \
    script powershell batch cron automation workflow integration api webhook endpoint sso saml \
    oauth azure entra tenant conditional guest external sharing link expired audit compliance \
    retention legal hold archive pst ost rebuild index search indexing outlook profile repair \
    office repair click run channel build version compatibility legacy java flash plugin addin \
    extension toolbar popup blocked pdf reader acrobat form fill sign scan ocr fax voicemail \
    extension forwarding hunt group reception desk phone handset softphone sip trunk codec jitter \
    echo dropped call quality headset firmware dongle receiver pairing range interference";

pub(crate) struct Vocabulary {
    words: Vec<&'static str>,
    /// Cumulative Zipf weights (s = 1).
    cumulative: Vec<f64>,
}

impl Vocabulary {
    pub(crate) fn new() -> Self {
        let mut words: Vec<&'static str> = Vec::new();
        for w in WORDS.split_whitespace() {
            if !words.contains(&w) {
                words.push(w);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    pub(crate) fn word(&self, rng: &mut Rng) -> &'static str {
        let total = *self.cumulative.last().expect("words");
        let x = rng.unit() * total;
        let i = self.cumulative.partition_point(|c| *c < x);
        self.words[i.min(self.words.len() - 1)]
    }

    /// `lo..=hi` words separated by spaces, with a sentence's punctuation.
    pub(crate) fn text(&self, rng: &mut Rng, lo: usize, hi: usize) -> String {
        let n = rng.between(lo, hi);
        let mut out = String::with_capacity(n * 8);
        for i in 0..n {
            if i > 0 {
                out.push_str(if rng.below(9) == 0 { ". " } else { " " });
            }
            out.push_str(self.word(rng));
        }
        out.push('.');
        out
    }

    /// A resolved ticket's description and resolution.
    pub(crate) fn ticket(&self, rng: &mut Rng) -> (String, String) {
        (self.text(rng, 20, 60), self.text(rng, 8, 25))
    }

    /// A selective query: 2–3 words from the rare half of the vocabulary
    /// (each in a few per cent of tickets), so that the GIN index pays.
    pub(crate) fn rare_query(&self, rng: &mut Rng) -> String {
        let half = self.words.len() / 2;
        let n = rng.between(2, 3);
        (0..n)
            .map(|_| self.words[half + rng.below(self.words.len() - half)])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A new ticket's text as the worker searches with it (subject and
    /// description).
    pub(crate) fn query(&self, rng: &mut Rng) -> String {
        self.text(rng, 10, 30)
    }
}
