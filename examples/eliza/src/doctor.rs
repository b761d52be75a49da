//! A small ELIZA: keyword rules with pronoun reflection, after Weizenbaum's 1966 program.

/// One rule: if the sentence contains `keyword`, answer with one of `replies`, where `{}`
/// is replaced by the reflected rest of the sentence after the keyword.
struct Rule {
    keyword: &'static str,
    replies: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        keyword: "i need",
        replies: &[
            "Why do you need {}?",
            "Would it really help you to get {}?",
            "Are you sure you need {}?",
        ],
    },
    Rule {
        keyword: "why don't you",
        replies: &[
            "Do you really think I don't {}?",
            "Perhaps eventually I will {}.",
        ],
    },
    Rule {
        keyword: "why can't i",
        replies: &[
            "Do you think you should be able to {}?",
            "If you could {}, what would you do?",
        ],
    },
    Rule {
        keyword: "i can't",
        replies: &[
            "How do you know you can't {}?",
            "Perhaps you could {} if you tried.",
        ],
    },
    Rule {
        keyword: "i am",
        replies: &[
            "Did you come to me because you are {}?",
            "How long have you been {}?",
            "How do you feel about being {}?",
        ],
    },
    Rule {
        keyword: "i'm",
        replies: &[
            "How does being {} make you feel?",
            "Do you enjoy being {}?",
            "Why do you tell me you're {}?",
        ],
    },
    Rule {
        keyword: "are you",
        replies: &[
            "Why does it matter whether I am {}?",
            "Would you prefer it if I were not {}?",
        ],
    },
    Rule {
        keyword: "what",
        replies: &[
            "Why do you ask?",
            "How would an answer to that help you?",
            "What do you think?",
        ],
    },
    Rule {
        keyword: "how",
        replies: &[
            "How do you suppose?",
            "Perhaps you can answer your own question.",
            "What is it you're really asking?",
        ],
    },
    Rule {
        keyword: "because",
        replies: &[
            "Is that the real reason?",
            "What other reasons come to mind?",
        ],
    },
    Rule {
        keyword: "sorry",
        replies: &[
            "There are many times when no apology is needed.",
            "What feelings do you have when you apologize?",
        ],
    },
    Rule {
        keyword: "hello",
        replies: &[
            "Hello... I'm glad you could drop by today.",
            "Hi there... how are you today?",
        ],
    },
    Rule {
        keyword: "i think",
        replies: &[
            "Do you doubt {}?",
            "Do you really think so?",
            "But you're not sure {}?",
        ],
    },
    Rule {
        keyword: "friend",
        replies: &[
            "Tell me more about your friends.",
            "When you think of a friend, what comes to mind?",
        ],
    },
    Rule {
        keyword: "yes",
        replies: &["You seem quite sure.", "OK, but can you elaborate a bit?"],
    },
    Rule {
        keyword: "computer",
        replies: &[
            "Are you really talking about me?",
            "Does it seem strange to talk to a computer?",
        ],
    },
    Rule {
        keyword: "is it",
        replies: &[
            "Do you think it is {}?",
            "Perhaps it's {} -- what do you think?",
        ],
    },
    Rule {
        keyword: "can you",
        replies: &[
            "What makes you think I can't {}?",
            "If I could {}, then what?",
        ],
    },
    Rule {
        keyword: "i feel",
        replies: &[
            "Good, tell me more about these feelings.",
            "Do you often feel {}?",
            "When do you usually feel {}?",
        ],
    },
    Rule {
        keyword: "mother",
        replies: &[
            "Tell me more about your mother.",
            "What was your relationship with your mother like?",
        ],
    },
    Rule {
        keyword: "father",
        replies: &[
            "Tell me more about your father.",
            "How did your father make you feel?",
        ],
    },
    Rule {
        keyword: "you",
        replies: &[
            "We should be discussing you, not me.",
            "Why do you say that about me?",
        ],
    },
];

const FALLBACK: &[&str] = &[
    "Please tell me more.",
    "Let's change focus a bit... Tell me about your family.",
    "Can you elaborate on that?",
    "I see.",
    "Very interesting.",
    "How does that make you feel?",
];

const GOODBYES: &[&str] = &["bye", "goodbye", "done", "exit", "quit"];

/// Swaps first and second person so a fragment can be said back.
fn reflect(fragment: &str) -> String {
    fragment
        .split_whitespace()
        .map(|word| match word {
            "i" => "you",
            "me" => "you",
            "my" => "your",
            "am" => "are",
            "i'm" => "you are",
            "you" => "I",
            "your" => "my",
            "yours" => "mine",
            "are" => "am",
            "myself" => "yourself",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A stable choice among `n` options for a sentence, so replies are varied yet testable.
fn pick(sentence: &str, n: usize) -> usize {
    let hash = sentence.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    hash as usize % n
}

/// ELIZA's reply to one sentence, and whether the conversation is over.
pub fn reply(sentence: &str) -> (String, bool) {
    let cleaned = sentence
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .to_lowercase();
    if GOODBYES.contains(&cleaned.as_str()) {
        return ("Goodbye. It was nice talking to you.".to_owned(), true);
    }
    for rule in RULES {
        if let Some(at) = cleaned.find(rule.keyword) {
            let rest = cleaned[at + rule.keyword.len()..].trim();
            let template = rule.replies[pick(&cleaned, rule.replies.len())];
            return (template.replace("{}", &reflect(rest)), false);
        }
    }
    (FALLBACK[pick(&cleaned, FALLBACK.len())].to_owned(), false)
}

/// The sentences ELIZA introduces herself with.
pub fn introduction(name: &str) -> Vec<String> {
    let name = if name.trim().is_empty() {
        "friend"
    } else {
        name.trim()
    };
    vec![
        format!("Hi {name}. I'm Eliza."),
        "Before we begin, let me tell you something about myself.".to_owned(),
        "I was created by Joseph Weizenbaum at MIT in the 1960s.".to_owned(),
        "I listen, and I ask questions. How are you feeling today?".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflects_and_says_goodbye() {
        let (answer, done) = reply("I need my coffee.");
        assert!(answer.contains("your coffee"), "{answer}");
        assert!(!done);
        assert!(reply("Goodbye!").1);
        assert!(introduction("Ada")[0].contains("Ada"));
    }
}
