"""What replies say, phrase by phrase, in English, Spanish, French, German, Portuguese and Italian.

Each entry is a regular-expression fragment over `Reply.words` (folded: lower case, no
accents, apostrophes as spaces, one space between tokens, "," between clauses, "?" for a
question mark); `compiled` wraps it so it only matches whole tokens. Fragments are grouped
by the intent they signal and the language they belong to ("*" for words every language
uses), so one match both votes for an intent and says which language the reply is in.

Written from general knowledge of how people answer business texts (appointment reminders,
order updates, surveys), not from the evaluation set in `bench/data/`.
"""

from __future__ import annotations

from collections.abc import Mapping

import regex

__all__ = [
    "ASSENT_WORDS",
    "BARE_STOP_WORDS",
    "FILLER_WORDS",
    "LANGUAGES",
    "LEXICON",
    "STOPWORDS",
    "compiled",
    "vocabulary",
]

LANGUAGES = ("en", "es", "fr", "de", "pt", "it")

# Words that only mean "stop texting me" when nothing else but fillers stands beside them:
# "STOP pls", "stopp", "basta!", but not "stop by the store" or "don't stop".
BARE_STOP_WORDS = frozenset({
    "stop", "stopp", "stoppen", "stopall", "unsubscribe", "unsub", "quit", "end", "optout",
    "arrete", "arretez", "arret", "halt", "alto", "baja", "basta", "sair", "parar", "parem",
    "pare", "remove", "spam", "desabonner", "abmelden", "paren", "chega", "smettetela", "smettila", "smettete",
    "piantatela", "piantala", "finitela", "aufhoren", "aufhoeren", "desist",
})
# Politeness, fillers and sign-offs that do not change what a short reply means.
FILLER_WORDS = frozenset({
    "please", "pls", "plz", "plse", "pleas", "now", "it", "just", "already", "asap", "thanks",
    "thank", "you", "thx", "ty", "u", "ok", "okay", "x", "xx", "me", "this", "these", "them",
    "all", "right", "the", "messages", "texts", "texting", "sms", "msg", "msgs",
    "por", "favor", "porfa", "porfavor", "pf", "pfv", "gracias", "ya", "merci", "svp", "stp",
    "s", "il", "vous", "plait", "bitte", "danke", "sofort", "obrigado", "obrigada", "grazie",
    "per", "perfavore", "subito", "a", "la", "de", "le", "die", "das", "o", "el", "i", "e",
    "y", "et", "und", "and", "ahora", "maintenant", "jetzt", "agora", "ora", "mas", "plus",
    "mehr", "piu", "mais", "more", "again", "anymore", "?", ",", "favore", "endlich", "doch", "seriously", "ffs",
})

# Words that agree without changing which option a reply picks ("yes, A", "ok B").
ASSENT_WORDS = frozenset({
    "yes", "yeah", "yep", "yup", "sure", "ok", "okay", "k", "si", "oui", "ja", "sim", "vale", "claro", "certo", "passt",
    "i", "ll", "we", "do", "go", "with", "prefer", "take", "my", "choice", "is", "answer",
})

_NOT = r"(?:don t|dont|do not|pls don t|please don t)"
_CANT = r"(?:can t|cant|cannot|can not|won t|wont|couldn t|couldnt|unable to|not able to|will not)"
_DAYS_EN = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
# "my number ... delete it": a deletion a few words after the reply names a phone number.
_NUMBER_THEN = r"(?:number|numero|nummer|num|telefone|telefono|telephone) (?:\S+ ){0,6}?"

LEXICON: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "opt_out": {
        "*": (r"unsub\w*", r"opt ?out\w*", r"stop ?all", r"spam\w*", r"stop (?:\w+ )?(?:sms|spam\w*)"),
        "en": (
            r"(?:stop|quit|cease|end) (?:(?!by |in |at |over |on )\w+ )?(?:text|txt|messag|msg|send|contact|bother|harass|call|email|remind|notif|promo)\w*",
            r"(?:stop|quit|cease) (?:it|this|these|that|them)(?: now| already| please| pls| plz)?(?= ,| \?|$)",
            rf"{_NOT} (?:ever )?(?:text|txt|message|msg|contact|sms|send|email|call|bother)\w* (?:me|us|this|my|again|anymore)",
            r"never (?:text|txt|message|msg|contact|sms|email|call)\w* (?:me|us|this|my|again)",
            r"no more (?:text|txt|messag|msg|sms|contact|notification|reminder|promo)\w*",
            r"no (?:texts|messages|msgs|sms) (?:please|pls|plz|anymore|thanks)",
            r"remove (?:me|my (?:number|num|phone|cell|info|contact)|us|this number)(?! from (?:the |my |this |your |that )?(?:wait ?list|appointment|appt|booking|reservation|order|class|schedule|cart|calendar|meeting|event|session)\b)",
            r"(?:delete|erase|lose|remove|scrap|purge) (?:my|this) (?:phone |cell |mobile )?(?:number|num|#|contact|info|details|data)",
            r"(?:delete|erase|remove) (?:the|this|our) (?:phone |cell |mobile )?number",
            rf"{_NUMBER_THEN}(?:delete|erase|lose|remove|forget) (?:it|that|me|this)",
            r"(?:stop|quit|cease) (?:\w+ )?(?:bug|pester|annoy|hound|ping|spamm|stalk)\w*",
            r"(?:get|make|want|need|have|like) (?:the |these |this |your |ur |those |all )?(?:text|txt|messag|msg|sms|notification|reminder|email)\w* (?:to )?stop",
            r"enough (?:with |of )?(?:the |these |your |ur |all )?(?:text|txt|messag|msg|sms|spam|notification|reminder)\w*",
            r"opt (?:me|us|my number|this number) out", r"(?:want|get me|let me) out(?= ,| \?|$| of (?:this|these|here|it)(?= ,| \?|$))",
            r"out of (?:your|the|this|ur|ya) (?:\w+ )?list", r"cease and desist",
            rf"{_NOT} (?:text|txt|message|msg|contact|sms|email)(?= ,| \?|$)",
            rf"(?:{_NOT}|no longer|not|never) (?:want|wish|like|consent) (?:to be|being) (?:contacted|texted|messaged|called|bothered|spammed|emailed|on)",
            r"(?:block|blocking|blocked) (?:you|u|this number|this|your number|ur number)", r"(?:report|reporting) (?:you|u|this number)",
            # Asking for silence: "don't talk anymore", "stop talking", "be quiet", "shut up".
            rf"(?:{_NOT}|never|stop|quit|no more) (?:\w+ )?(?:talk|speak|chat)\w*(?: (?:to|with) (?:me|us))?"
            r"(?: (?:any ?more|any further|again|now|please|pls|for now|already|for a (?:second|sec|minute|min|bit|while)))*(?= ,| \?|$)",
            r"refrain from (?:talk|speak|chat|text|messag|contact)\w*", r"(?:^|(?<=, ))(?:quiet|hush|shush|shh+)(?= ,| \?|$| now| please| pls)",
            r"(?:i|we) (?:don t|dont|do not) want (?:you|u) to (?:talk|speak|text|message|contact|chat)\w*",
            r"(?:be|keep|stay) (?:quiet|silent)(?= ,| \?|$| now| please| pls| already)", r"shut (?:up|it)(?= ,| \?|$| now| please| already)",
            r"(?:fuck off|f off|piss off|bugger off)", r"(?:^|(?<=, ))(?:go away|get lost)(?= ,| \?|$| please| pls| now)",
            r"take (?:me|my number|us|this number) off",
            r"off (?:your|the|this|ur|ya) (?:\w+ )?list",
            r"leave (?:me|us) alone",
            r"wrong (?:number|num|person|#|guy|girl|lady|man|dude|phone|contact|people)",
            r"remove (?:me |us |my number |this number )?from (?:the |your |ur |this |ya |all )?(?:(?!wait )\w+ )?(?:list|contacts|database|system)",
            r"not (?:text|txt|message|msg|contact|sms|email)\w* (?:me|us)(?: (?:anymore|any more|again|ever))?",
            r"(?:asked|told|said|say|saying|ask|tell|telling|telling) (?:you |u |ya |y all )?(?:to )?stop",
            r"(?:this|that|it) (?:number|num|phone) (?:is not|isn t|isnt|s not|aint) (?:for you|mine|my|the right|the one)",
            r"not (?:my|the right|the correct) (?:number|phone)", r"(?:delete|erase) (?:me|us)(?= ,| \?|$| from| off| please| pls| now)",
            r"(?:please|pls|plz|plse|kindly|just|so|now) (?:stop|quit)(?= ,| \?|$| please| pls| plz| now| it)",
            r"(?:never|didn t|didnt|did not) (?:sign|signed|opt|opted|subscribe|subscribed|ask|asked) (?:up|in|for)",
            # A message word is needed: "I don't want any tickets" turns an offer down.
            rf"(?:{_NOT}|no longer|not|never) (?:want|wish|need|asked for) (?:to )?(?:receive|get|any|these|those|this|your|more|ur)"
            r"(?: (?:any|more|these|those|your|ur|the|this|of|such))*(?: \w+)? (?:text|txt|messag|msg|sms|notification|promo|reminder|alert|spam)\w*",
            rf"(?:{_NOT}|no longer|not|never) (?:want|wish) (?:to )?(?:receive(?: (?:these|those|them|this|it|anything|any|more))?|get (?:these|those)|these|those)(?= ,| \?|$)",
        ),
        "es": (
            r"(?:deja|dejen|dejad|deje|dejes|paren|para|pare|basta) de (?:\w+ )?(?:envi|mand|escrib|contact|molest|llam|text|spam|mensaj|freg|jod|ching|insist|acos)\w*",
            r"no (?:me |nos )?vuelv\w* a (?:escrib|mand|envi|contact|llam|molest|text)\w*",
            r"no (?:quiero|queremos|deseo) que (?:me |nos )?(?:sigan |vuelvan a )?(?:escrib|mand|envi|contact|llam|molest|text)\w*",
            r"no mas (?:mensaj|sms|msj|text|notific|promo|llamad|correo|publicidad)\w*",
            r"(?:nunca|no) (?:me )?(?:registre|suscribi|inscribi|apunte|di de alta|autorice)\w*", r"nunca (?:pedi|solicite|acepte)\w*",
            rf"{_NUMBER_THEN}(?:borr|elimin|quit|sac)\w*lo",
            r"(?:borra|borre|borren|elimina|elimine|eliminen|quita|quite|quiten|saca|saquen) (?:mi |el |este )(?:numero|telefono|contacto|celular|cel)",
            r"no (?:quiero|deseo) recibir (?:nada|mas nada|nada mas)",
            r"no (?:me |nos )?(?:enviar|mandar|escribir|contactar|enviarme|mandarme|escribirme|contactarme)\w* (?:mas|nunca)",
            r"(?:para|pare|paren|basta) (?:con )?(?:eso|esto|esa|ya)(?= ,| \?|$)",
            r"(?:ya )?no quiero (?:recibir )?(?:mas )?nada (?:de (?:ustedes|uds|ud|usted|ti|su empresa|esto))",
            r"no (?:me |nos )?(?:vuelv\w* a )?(?:escrib(?:as|an|a|ais)|mand(?:es|en|e)|envi(?:es|en|e)|contact(?:es|en|e)|llam(?:es|en)|molest(?:es|en)|text(?:ees|een))(?: mas)?(?! (?:la|el|los|las|un|una|su|sus|tu|mi) (?!mensaj|sms|msj|texto|notific|promo|publicidad|correo|spam)\w+)",
            r"ya no (?:me |nos )?(?:mand|envi|escrib|contact|llam|molest)\w*",
            r"(?:no quiero|no deseo|ya no quiero|no queremos) (?:recibir |seguir recibiendo )?(?:mas )?(?:\w+ )?(?:mensajes|sms|textos|msj|mensajitos|notificaciones|promociones|publicidad)",
            r"basta (?:de|con) (?:\w+ )?(?:mensajes|sms|msj|textos)",
            r"(?:dar|darme|darse|doy|denme|dame|deme|me doy) de baja", r"de baja",
            r"(?:quit|sac|saqu|borr|elimin|remuev|remov)\w*me", r"(?:quit|sac|saqu|borr|elimin|remuev|remov)\w* (?:mi numero|mi telefono|mi contacto|de (?:la|su|sus|tu|esta) lista)",
            r"numero (?:equivocado|incorrecto)", r"equivoc\w* de numero",
            r"cancelar (?:la |mi )?suscripcion", r"desuscrib\w*", r"desinscrib\w*",
            r"(?:dejame|dejenme|dejeme) en paz",
        ),
        "fr": (
            r"(?:arret|cess|stop)\w* (?:de |d )?(?:me |m |nous |les |vos |ces |tes )?(?:envoy|envoi|ecri|text|contact|harcel|spam|appel|relanc|sms|messag|emmerd|derang)\w*",
            r"(?:ne|n) (?:m |me |nous )?(?:ecri|envoy|contact|text|appel|relanc|derang)\w* plus",
            r"(?:veux|veut|voulons|souhaite|souhaitons|desire) (?:pas|plus) (?:de |d |recevoir )?(?:de |d )?(?:ces|vos|tes|les|des|aucun\w*)? ?(?:messages?|sms|textos?|notifications?|relances?|pubs?|appels?)",
            r"ne plus (?:m |me |nous )?(?:ecri|envoy|contact|text|appel|relanc|derang|recevoir)\w*", r"plus jamais",
            r"(?:je |j )?(?:ne )?(?:veux|veut|voulons|voudrais|souhaite|souhaitons|desire) plus (?:\w+ ){0,2}(?:sms|messages?|textos?|notifications?|rien|de vos|vos|recevoir|etre (?:contact|derang|appel|relanc|sollicit)\w*)",
            r"numero (?:\w+ ){0,2}(?:n est |est )?(?:pas|plus) (?:le bon|valide|le mien|a moi)",
            r"(?:tromp\w*|erreur) de (?:numero|num|personne|destinataire)", r"(?:pas|plus) (?:le bon|mon) numero",
            r"(?:pas|jamais) (?:\w+ )?(?:inscrit|abonne|consenti)\w*", r"(?:rien|jamais) demande",
            r"(?:ca suffit|assez|marre|ras le bol) (?:avec |de |d )?(?:les |vos |des |ces |tes |vos )?(?:messages?|sms|textos?|relances?|notifications?|pubs?|spam)",
            r"(?:lachez|lache|laissez|laisse) moi(?= ,| \?|$)",
            rf"{_NUMBER_THEN}(?:supprim|effac|retir|enlev)\w* (?:le|la|les)",
            r"plus (?:de |d )?(?:messages?|sms|textos?|notifications?)",
            r"desabonn\w*", r"desinscri\w*", r"desincri\w*", r"me desabonner",
            r"(?:retir|supprim|enlev|effac|ot|radi)\w* (?:moi|mon numero|mon (?:num|tel|telephone|contact)|de (?:la|votre|vos) liste)",
            r"mauvais (?:numero|num|destinataire)", r"(?:laisse|laissez|lachez|lache) moi (?:tranquille|en paix)", r"foutez moi la paix",
        ),
        "de": (
            r"(?:hor|hort|horen|hoer|hoert|hoeren)(?: \w+)? auf", r"aufhor\w*", r"aufhoer\w*",
            r"(?:schreib|schick|send|kontaktier|sims|textet|nerv|belastig|anruf|ruf)\w* (?:\w+ ){0,2}(?:nicht mehr|nie wieder|nie mehr|nichts mehr|keine \w+ mehr)",
            r"nicht mehr (?:\w+ )?(?:schreiben|kontaktieren|anschreiben|senden|schicken|simsen|belastigen|nerven)",
            r"keine (?:\w+ )?(?:sms|nachrichten|nachricht|mitteilungen|werbung|texte|textnachrichten|messages|mails|benachrichtigungen) (?:mehr|bitte|danke)",
            r"abmeld\w*", r"abbestell\w*", r"austrag\w*", r"trag\w* (?:mich|meine nummer) aus", r"deabonn\w*", r"kundig\w*",
            r"(?:losch|loesch|entfern|streich)\w* (?:sie |ihr |bitte |doch |endlich |sofort ){0,3}(?:meine|mich)",
            r"(?:aus dem|aus der|von der|vom|aus ihrem|aus eurem) (?:verteiler|liste|newsletter|mailingliste|verteilerliste|system)",
            r"schluss (?:mit )?(?:den |der |diesen |ihren |euren |dem )?(?:nachricht|sms|werbung|spam|mails|textnachricht|benachrichtigung)\w*",
            r"nichts mehr (?:\w+ ){0,2}(?:erhalten|bekommen|empfangen|zugeschickt|geschickt|schicken|senden)",
            r"keine weitere\w* (?:sms|nachricht\w*|mitteilung\w*|werbung|texte|mails|benachrichtigung\w*)",
            r"nicht mehr (?:\w+ )?(?:angeschrieben|kontaktiert|angerufen|belastigt|belaestigt|genervt|benachrichtigt|angesimst) (?:werden|zu werden)",
            r"lass\w* (?:sie |ihr )?(?:das|es)(?: sein| bleiben)?(?= ,|$)", r"stopp\w* (?:sie |ihr )?(?:das|dies|es|die nachrichten|die sms|den spam)(?= ,|$| bitte| sofort| jetzt)",
            r"verwahlt|verwaehlt|falsch verbunden",
            r"falsche nummer", r"lass\w* (?:\w+ )?(?:mich|uns) (?:\w+ )?in ruhe",
            r"meld\w* (?:\w+ )?(?:mich|uns|meine nummer) (?:\w+ ){0,3}ab", r"trag\w* (?:\w+ )?(?:mich|uns|meine nummer) (?:\w+ ){0,3}aus",
            r"(?:nie|niemals|mich nicht|mich nie) (?:\w+ )?(?:angemeldet|registriert|eingetragen|abonniert)", r"nie (?:\w+ )?zugestimmt",
            r"(?:will|mochte|moechte|wollen|mochten) (?:das|dies|diese \w+|ihre \w+|eure \w+) nicht mehr",
            r"(?:nerv|belastig|belaestig|stor|stoer|beläst)\w* (?:\w+ )?(?:mich|uns) (?:\w+ )?(?:nicht|nie) mehr",
            rf"{_NUMBER_THEN}(?:losch|loesch|entfern)\w*",
        ),
        "pt": (
            r"(?:para|pare|parem|parar|chega|deixa|deixe|deixem) de (?:me )?(?:\w+ )?(?:mand|envi|escrev|contat|lig|incomod|encher|msg|mensag|sms|spam)\w*",
            r"nao (?:me )?(?:mand|envi|escrev|contat|lig|incomod)\w* mais",
            r"(?:nao|n) (?:quero|desejo) (?:mais )?(?:receber |recebe )?(?:mais )?(?:\w+ )?(?:mensage\w*|sms|msg|textos|notificac\w*|promoc\w*)",
            r"descadastr\w*", r"desinscrev\w*",
            r"(?:nao|n) (?:quero|desejo) (?:mais )?(?:receber|recebe)(?: mais)?(?: nada)?(?= ,| \?|$)",
            r"(?:nao|n) (?:quero|desejo) (?:receber )?(?:mais )?nada (?:de |d )?(?:voces|vcs|vc|voce|sua|seu|dessa|desse)",
            r"(?:apag|exclu|delet|tir|remov)\w* (?:o meu |meu |esse |este )(?:numero|contato|cadastro|telefone|celular)",
            r"err(?:aram|ou|am) (?:o |de )?numero", r"(?:nunca|nao) me (?:cadastr|inscrev|registr)\w*",
            r"nunca (?:cadastr|inscrev|registr|assin|pedi|solicitei)\w*",
            rf"{_NUMBER_THEN}(?:apag|exclu|delet|tir)\w*",
            r"(?:nao|n) (?:me |nos )?(?:mand(?:e|em|a)|envi(?:e|em|a)|escrev(?:a|am|e)|lig(?:ue|uem|a)|contat(?:e|em)) (?:mais |nem |nenhuma )?(?:mensag\w*|msg\w*|sms|nada|nem|mais)",
            r"(?:sair|me tira|me tire|tira|tire|tirem|me remov\w*|remov\w*|exclu\w*|me exclu\w*) (?:\w+ )?(?:lista|cadastro|numero|contato)",
            r"(?:quero|queria|gostaria de|desejo) sair(?= ,| \?|$| d(?:a|essa|esta) lista| disso| daqui)", r"sair d(?:a|essa|esta) lista",
            r"(?:para|pare|parem|chega) com (?:isso|essas? \w+|as mensagens|as msgs?)",
            r"(?:nao|n) quero mais(?= ,|$| obrigad\w*| valeu)", r"(?:me )?(?:tira|tire|tirem|remov\w*|exclu\w*) (?:daqui|disso|dessa|desta)(?= ,|$| lista)",
            r"chega (?:de |dessas? |desses? |com )?(?:\w+ )?(?:mensag|msg|sms|spam|notific)\w*", r"(?:^|(?<=, ))sai fora",
            r"numero errado", r"(?:me deixa|me deixem|me deixe) em paz",
            r"cancelar (?:a |minha )?(?:inscricao|assinatura)",
        ),
        "it": (
            r"(?:smett|basta|finit)\w* (?:di |de |con )?(?:\w+ )?(?:scriv|mand|invi|contatt|messag|sms|spam|chiam|disturb)\w*",
            r"non (?:mi |ci )?(?:scriv|mand|invi|contatt|chiam|disturb)\w* (?:\w+ )?(?:piu|mai piu)",
            r"non (?:voglio|desidero) (?:piu )?(?:ricevere )?(?:piu )?(?:\w+ )?(?:messaggi|sms|notifiche|comunicazioni|promozioni|nulla|niente)",
            r"non (?:voglio|desidero) (?:piu )?essere (?:piu )?(?:contattat|disturbat|chiamat|scritt)\w*",
            r"basta (?:piu )?(?:altri )?(?:messagg|sms|notific|chiamat|promo)\w*",
            r"(?:niente|nessun\w*) (?:piu (?:\w+ )?(?:messagg|sms|notific|chiamat|promo)\w*|(?:messagg|sms|notific|promo)\w* (?:piu|grazie|per favore))",
            r"sbagliat\w* (?:il )?numero", r"numero (?:errato|sbagliato)", r"disiscri\w*",
            r"mai (?:\w+ )?(?:iscritt|registrat|abbonat)\w*", r"non mi sono (?:mai )?(?:iscritt|registrat|abbonat)\w*",
            rf"{_NUMBER_THEN}(?:cancell|elimin|rimuov|togli)\w*lo",
            r"(?:toglietemi|toglimi|cancellatemi|cancellami|rimuovetemi|rimuovimi|eliminatemi|levatemi)", r"disiscriv\w*",
            r"(?:elimin|cancell|rimuov|togli)\w* (?:il )?mio numero", r"numero sbagliato",
            r"(?:lasciatemi|lasciami) (?:in pace|stare)",
            r"(?:rotto|rotti|stufato|stufo|stufa|scocciato|scocciata|stancat\w*) (?:\w+ ){0,2}(?:messagg|sms|notific|spam)\w*", r"mi avete (?:rotto|stufato|scocciato)", r"annull\w* (?:l |la )?(?:iscrizione|sottoscrizione)",
        ),
    },
    "cancel": {
        "*": (r"cancel\w*",),
        "en": (r"call (?:it |this |that |the \w+ |my \w+ )?off",),
        "es": (r"anul\w*",),
        "fr": (r"annul(?!l)\w*", r"decommand\w*"),
        "de": (r"absag\w*", r"sag\w*(?: \w+){0,6} ab", r"storn\w*", r"termin (?:ist )?(?:hinfallig|abgesagt)"),
        "pt": (r"desmarc\w*",),
        "it": (r"annull\w*", r"disdi\w*", r"disdic\w*"),
    },
    # Asking for another time whatever else is said.
    "reschedule": {
        "*": (),
        "en": (
            r"re ?sched\w*", r"reshed\w*", r"re ?book\w*", r"postpone\w*", r"push (?:it |this |that |me |us )?(?:to|till|until|back|out)",
            r"(?:move|moving|moved|bump|shift) (?:it|my|me|the|this|our|that|appt|appointment|to|back|forward|out|us)",
            r"(?:change|switch|swap) (?:it|my|the|our|this|that|to|day|time|date|appt|appointment)",
            r"(?:different|another|other|new|diff|later|earlier|diferent) (?:time|day|date|slot|appointment|appt|hour)",
            r"(?:hours?|hrs?|mins?|minutes|days?|a week|an hour) (?:later|earlier)",
        ),
        "es": (
            r"reprogram\w*", r"reagend\w*", r"posp\w*", r"aplaz\w*", r"recorr\w*",
            r"(?:cambi|mov)\w* (?:\w+ )?(?:la cita|cita|hora|fecha|dia|para|al|a las|a la|el|lo|la|horario|turno)",
            r"(?:pasar|pasarla|pasarlo|pasamos|pasemos|pasen|pasela|pasalo) (?:\w+ )?(?:al|para|a|el)",
            r"otr[oa] (?:dia|hora|fecha|horario|momento|turno|cita)", r"mas (?:tarde|temprano)",
        ),
        "fr": (
            r"report\w*(?<!(?:^| )(?:report|reports|reported|reporting))", r"decal\w*", r"deplac\w*",
            r"chang\w* (?:\w+ )?(?:heure|date|jour|rdv|rendez vous|horaire|creneau|de jour|d heure|de date)",
            r"(?:autre|nouveau|nouvelle) (?:jour|date|heure|moment|creneau|horaire|rdv|rendez vous)", r"une autre (?:date|heure|fois)",
        ),
        "de": (
            r"verschieb\w*", r"verleg\w*", r"umbuch\w*", r"umleg\w*",
            r"(?:ander|aender|andern)\w* (?:\w+ )?termin", r"termin (?:\w+ )?(?:andern|aendern|verschieben|verlegen|tauschen)",
            r"(?:anderen|anderer|andere|anderes|neuen|neue) (?:termin|tag|zeit|uhrzeit|datum)",
        ),
        "pt": (
            r"remarc\w*", r"reagend\w*", r"adi(?:ar|a|e|em|amos)\w*",
            r"(?:mud|troc|pass)\w* (?:\w+ )?(?:horario|data|dia|hora|consulta|pra|para)",
            r"outr[oa] (?:dia|horario|data|hora|vez)", r"mais (?:tarde|cedo)",
        ),
        "it": (
            r"spost\w*", r"rimand\w*", r"rinvi\w*", r"posticip\w*", r"anticip\w*",
            r"cambi\w* (?:\w+ )?(?:orario|data|giorno|ora|appuntamento)",
            r"(?:un altr[oa]|altr[oa]) (?:giorno|orario|data|ora|volta|momento)",
        ),
    },
    # Proposing: a reschedule when the reply also names a day or a time.
    "proposal": {
        "*": (),
        "en": (
            r"instead", r"how (?:about|bout|abt)", r"what (?:about|abt)", r"rather", r"prefer\w*", r"better", r"possible",
            r"(?:can|could|would|shall|may) (?:we|i|u|you|ya)",
            r"(?:lets|let s|let us) (?:do|make it|say|go|meet|try)", r"any chance", r"(?:free|available) (?:on|at)", r"works? better",
        ),
        "es": (
            r"mejor", r"prefier\w*", r"prefer\w*", r"(?<!no )puedo (?:ir|pasar|llegar)", r"podemos", r"podriamos", r"se puede", r"pueden",
            r"puede ser", r"que tal", r"y si", r"en (?:vez|lugar)", r"seria posible", r"posible",
        ),
        "fr": (
            r"plutot", r"prefer\w*", r"ca irait", r"possible", r"on peut", r"peut on", r"pourrait on", r"on pourrait", r"a la place",
            r"au lieu", r"et si", r"(?:ca|ce) (?:vous )?(?:va|irait|convient)", r"est ce qu on peut", r"pourriez vous", r"vous pouvez",
        ),
        "de": (
            r"lieber", r"besser", r"ginge\w*", r"geht", r"stattdessen", r"statt", r"(?:konnen|koennen|konnten|koennten) wir",
            r"wie (?:ware|waere|wars) es", r"moglich", r"moeglich", r"hatten sie", r"haetten sie", r"spater", r"spaeter", r"fruher", r"frueher",
        ),
        "pt": (
            r"prefir\w*", r"prefer\w*", r"melhor", r"pode ser", r"da pra", r"da para", r"podemos", r"poderiamos", r"que tal", r"e se",
            r"em vez", r"ao inves", r"no lugar", r"possivel", r"consigo (?:ir|passar)",
        ),
        "it": (
            r"meglio", r"prefer\w*", r"invece", r"al posto", r"possiamo", r"si puo", r"potremmo", r"va bene", r"e se", r"che ne dit\w*",
            r"che ne dici", r"sarebbe possibile", r"possibile", r"potrei",
        ),
    },
    "help": {
        "*": (r"help(?!ful)\w*", r"info",),
        "en": (
            r"assist\w*", r"support", r"(?:real|live|actual) (?:person|human|agent)", r"customer (?:service|care|support)",
            r"(?:talk|speak|chat) (?:to|with) (?:a |an |the )?(?:someone|somebody|person|human|agent|support|manager|rep|representative|real)\w*",
            r"how (?:do|does|can) (?:i|this|it|we) (?:\w+ )?(?:use|work)", r"representative", r"operator", r"call me", r"hlp", r"information",
            r"(?:what|wat|whats) (?:is |s )?(?:this|that) (?:service|program|programme|subscription)",
            r"what (?:kind|type|sort) of (?:service|program|programme|subscription)",
        ),
        "es": (
            r"ayud\w*", r"socorro", r"auxilio", r"soporte", r"asistencia",
            r"(?:hablar|comunicarme|contactar) con (?:\w+ )?(?:persona|alguien|agente|asesor|humano|representante|operador|ejecutivo)",
            r"informacion", r"como funciona", r"llamenme", r"llamame", r"que (?:tipo de )?servicio", r"que (?:es|son) (?:este|esto|ese|eso) (?:servicio|programa)",
        ),
        "fr": (
            r"aide", r"aidez", r"aider", r"m aider", r"assistance", r"support",
            r"(?:parler|discuter) (?:a|avec) (?:\w+ )?(?:quelqu un|conseiller|conseillere|personne|humain|agent|operateur|quelqu)",
            r"comment (?:ca|cela|ceci) (?:marche|fonctionne)", r"renseignement\w*", r"(?:c est quoi|quel est) (?:ce|cet|cette) (?:service|programme|abonnement)", r"besoin d (?:aide|info\w*)", r"appelez moi",
        ),
        "de": (
            r"hilfe", r"helf\w*", r"unterstutz\w*", r"unterstuetz\w*", r"mitarbeiter\w*", r"mensch", r"berater\w*", r"ansprechpartner",
            r"kundenservice", r"kundendienst", r"support", r"wie funktioniert", r"rufen sie mich an", r"ruft mich an",
            r"(?:mit|an) (?:jemandem|jemanden|jemand|einem menschen|einer person|einem mitarbeiter|einer mitarbeiterin) (?:\w+ )?(?:sprechen|reden|telefonieren)",
            r"wie (?:das|es|dies|dieser dienst) (?:hier )?funktioniert", r"wie geht das(?= \?| ,|$)", r"wie (?:benutze|nutze|verwende) ich",
            r"was (?:ist|sind) (?:das|dies|dieser) (?:fur|fuer)? ?(?:ein |eine |einen )?(?:dienst|service|programm|abo)",
        ),
        "pt": (
            r"ajud\w*", r"socorro", r"suporte", r"atendente", r"atendimento", r"assistente",
            r"falar com (?:\w+ )?(?:pessoa|alguem|atendente|humano|gente|responsavel)", r"como (?:que )?funciona", r"como (?:eu )?(?:uso|usa|utilizo)", r"informac\w*", r"me liga\w*", r"(?:que|qual) (?:e )?(?:esse |este )?servico",
        ),
        "it": (
            r"aiut\w*", r"assistenza", r"supporto", r"operatore", r"operatrice",
            r"parlare con (?:\w+ )?(?:persona|qualcuno|operatore|umano|responsabile)", r"come funziona", r"come si (?:usa|utilizza|fa)(?= \?| ,|$)", r"informazion\w*", r"chiamatemi", r"(?:che|quale) servizio", r"cos e questo servizio",
        ),
    },
    "question": {
        "*": (),
        "en": (
            r"who", r"whos", r"whose", r"where", r"wheres", r"why", r"which", r"what(?! about| abt)", r"whats", r"wat", r"wut",
            r"how(?! about| bout| abt)", r"when", r"hows",
            r"(?:^|(?<=, ))(?:is|are|do|does|did|will|would|should|am|r|have|has|can|could) (?:there|it|this|that|u|you|i|we|my|the|parking|your|ur|they)",
            r"how (?:much|long|many)", r"(?:address|location|located|parking|price|cost|costs|fee|open on)",
        ),
        "es": (
            r"quien\w*", r"donde", r"adonde", r"cuando", r"cuant[oa]s?", r"cual\w*", r"por que", r"a que hora", r"que hora",
            r"de que", r"que es", r"que significa", r"(?:tengo|tenemos|hay) que (?:llevar|traer|pagar)", r"hay (?:estacionamiento|parking|lugar)",
            r"direccion", r"ubicad\w*", r"precio", r"costo", r"abren", r"abierto\w*",
        ),
        "fr": (
            r"qui", r"quand", r"combien", r"pourquoi", r"quel\w*(?= (?:[^,?]+ )?\?)", r"quel\w* (?:est|heure|jour|sujet|adresse|prix)", r"c est quoi", r"quoi", r"est ce que", r"est ce",
            r"ou (?:est|sont|etes|se trouve|vous|ca)", r"etes ou", r"adresse", r"parking", r"ouvert\w*", r"prix", r"tarif\w*", r"apporter",
        ),
        "de": (
            r"wer", r"wo", r"wann", r"warum", r"wieso", r"weshalb", r"welche\w*", r"wieviel\w*", r"wie viel\w*", r"wie lange", r"wie spat",
            r"wie (?:ist|komme|sind|teuer)", r"worum", r"wohin", r"woher", r"(?:^|(?<=, ))was", r"was (?:ist|kostet|soll|muss|bedeutet|brauche|gibt)",
            r"gibt es", r"muss ich", r"soll ich", r"brauche ich", r"offen", r"geoffnet", r"adresse", r"parkpl\w*", r"kostet", r"kosten",
        ),
        "pt": (
            r"quem", r"onde", r"quando", r"quant[oa]s?", r"qual", r"quais", r"por que", r"o que", r"que horas", r"do que", r"de que",
            r"(?:preciso|tenho que|tenho de) (?:levar|trazer|pagar)", r"tem (?:estacionamento|vaga)", r"endereco", r"custa", r"abr(?:e|em)",
            r"aberto\w*", r"estacionamento",
        ),
        "it": (
            r"chi", r"dove", r"quando", r"quant[oaie]", r"qual\w*", r"perche", r"cosa", r"che ora", r"a che ora", r"di cosa", r"di che",
            r"come mai", r"c e (?:parcheggio|posto)", r"indirizzo", r"costa", r"aperti", r"aperto", r"parcheggio", r"devo portare",
        ),
    },
    "decline": {
        "*": (
            r"no(?! (?:problem\w*|prob\w*|probs|worries|worry|te preocupes|se preocupe|pasa nada|hay problema|hay de que|se|sei|so|idea|clue|rush|hurry|biggie|doubt|duda|lo se|se preocupen|way jose))",
            r"nope", r"(?:^|(?<=, ))non",
        ),
        "en": (
            r"nah", r"naw", r"nay", r"nty", r"no thanks?", r"no thank (?:you|u)", r"not (?:interested|intrested|intersted)", r"no interest",
            rf"{_CANT} (?:\w+ ){{0,2}}(?:make|come|go|attend|do|be|join|afford|today|tomorrow|tmrw|it)",
            r"(?:not|isn t|isnt|doesn t|doesnt|don t|dont|won t|wont) (?:going to |gonna )?(?:work|make it|available|free|possible|want|coming)",
            r"not (?:gonna|going to) (?:work|happen|make it)", r"not coming", r"(?:i ll|ill|i will) pass", r"count me out",
            r"not (?:this|that) (?:time|day|week)", r"unfortunately", r"sorry (?:i|we) (?:can t|cant|won t|wont)", r"(?:i m|im) good",
            r"not for me", r"no way", r"(?:^|(?<=, ))pass(?= ,|$)",
        ),
        "es": (
            r"nel", r"nop", r"nones", r"para nada",
            r"no (?:puedo|podre|podemos|podremos|voy a poder|me es posible|me va a ser posible|asistire|ire|creo|me interesa|estoy interesad\w*|gracias|me sera posible|sera posible|va a ser posible)",
            r"no me (?:interesa|queda|conviene|viene bien|sirve|es posible)", r"imposible", r"lo siento", r"(?:^|(?<=, ))paso(?= ,|$)",
        ),
        "fr": (
            r"nan", r"non merci", r"pas (?:interesse\w*|dispo\w*|possible|pour moi|le temps|libre|moyen)",
            r"(?:ne )?(?:peux|pourrai|pourrais|pourrons|peut|pourra|pourrez) (?:pas|plus)",
            r"(?:ca|cela) (?:ne )?(?:m arrange|me va|marche|va|convient|m convient) pas", r"m arrange pas", r"impossible", r"indisponible",
            r"je passe", r"malheureusement",
        ),
        "de": (
            r"nein", r"nee", r"noe", r"(?:^|(?<=, ))ne(?= ,| ich|$)",
            r"kein(?:e|en)? (?:interesse|zeit|bedarf|lust)",
            r"(?:kann|konnen|koennen|kann ich|schaffe|schaff|komme|kommen) (?:\w+ ){0,2}(?:nicht|nich|net)",
            r"(?:geht|passt) (?:\w+ ){0,2}(?:nicht|nich|net)", r"leider (?:nicht|nein|kann|nich)", r"nicht (?:moglich|moeglich|kommen|da)",
            r"unmoglich", r"unmoeglich", r"schaff\w* (?:es |ich )?(?:nicht|nich)",
        ),
        "pt": (
            r"nao(?! (?:sei|tem problema|ha problema|se preocupe|precisa|me mand|me envi|tem de que))", r"(?:^)n$", r"nem pensar",
            r"nao (?:posso|consigo|vou conseguir|vou poder|da|tenho interesse|vai dar|obrigad\w*)", r"infelizmente", r"impossivel",
        ),
        "it": (
            r"non (?:posso|riesco|ce la faccio|mi interessa|mi va|vengo|potro|potrei|sono interessat\w*|e possibile|mi e possibile)",
            r"nn (?:posso|riesco|vengo)", r"purtroppo", r"impossibile", r"no grazie", r"mi dispiace",
        ),
    },
    "confirm": {
        "*": (
            r"ok\w*", r"okay\w*", r"okey(?: dokey)?", r"oki\w*", r"kk", r"o k", r"(?:^|(?<=, ))k(?= ,|$)", r"top", r"super",
        ),
        "en": (
            r"(?:^|(?<=, ))(?:y|ya|ye|yh|yy)(?= |$)", r"yes\w*", r"yea\w*", r"yeh", r"yep\w*", r"yup\w*", r"yas", r"yah",
            r"(?<!not )(?<!not so )(?<!un)sure",
            r"certainly", r"absolutely", r"definitely", r"of course", r"ofc", r"alright", r"all right", r"aight", r"fine", r"great",
            r"cool", r"perfect", r"sounds (?:good|great|perfect|fine)", r"works (?:for me|great|fine|well)", r"that works", r"will do",
            r"(?:i ll|ill|i will|we ll|well|we will|will) be there", r"see (?:you|ya|u|yall)", r"c (?:u|ya)", r"cu (?:then|there|soon|tmrw|tomorrow)",
            r"count me in", r"(?:i m|im) (?:in|coming|on my way)", r"on my way", r"omw", r"got it", r"gotcha", r"roger", r"confirm\w*",
            r"booked", r"deal", r"for sure", r"bet", r"grand", r"lovely", r"brilliant", r"no (?:problem|prob|probs|worries)", r"np",
            r"sgtm", r"correct", r"(?:i ll|ill|i will|we ll|we will) (?:come|attend|make it)", r"book (?:me|us|it)",
        ),
        "es": (
            r"(?:^|(?<=, ))si(?= |$)", r"sii+", r"sip", r"simon", r"sisi", r"claro\w*", r"vale", r"dale", r"perfecto", r"de acuerdo",
            r"deacuerdo", r"confirm\w*", r"(?:ahi|alli|alla) (?:estare|estaremos|estoy|nos vemos)", r"nos vemos", r"hasta (?:manana|el|luego|pronto)",
            r"esta bien", r"ta bien", r"listo", r"sale", r"por supuesto", r"correcto", r"genial", r"excelente", r"(?:^|(?<=, ))(?:si )?voy(?= ,|$)",
            r"cuenta conmigo", r"con gusto", r"no hay (?:problema|bronca)", r"de una",
        ),
        "fr": (
            r"oui\w*", r"ouais", r"ouai", r"ouep", r"ouaip", r"d accord", r"dac", r"dak", r"daccord", r"parfait\w*", r"confirm\w*",
            r"c est bon", r"c bon", r"cbon", r"ca marche", r"ca me va", r"ca roule", r"entendu", r"bien sur", r"volontiers",
            r"(?:je|nous|on) (?:serai|serais|serons|sera) la", r"a (?:demain|tout a l heure|plus|bientot|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)",
            r"nickel", r"tres bien", r"c est correct", r"pas de (?:souci|soucis|probleme)", r"aucun (?:souci|probleme)", r"(?:ok|bon) pour moi",
        ),
        "de": (
            r"ja+", r"jap", r"jep", r"jo+", r"joa", r"jawohl", r"jawoll", r"jup", r"passt", r"geht klar", r"alles klar", r"klar", r"in ordnung",
            r"bestatig\w*", r"bestaetig\w*", r"perfekt", r"(?<!la )prima", r"toll", r"klingt (?:gut|super|perfekt)", r"gerne?",
            r"bis (?:morgen|dann|bald|gleich|spater|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag)",
            r"(?:ich|wir) (?:komme|kommen|bin da|sind da)", r"bin dabei", r"einverstanden", r"sicher", r"genau", r"mach ich", r"machen wir",
            r"abgemacht", r"kein problem",
        ),
        "pt": (
            r"sim+", r"claro", r"pode ser", r"beleza", r"blz", r"confirm\w*", r"combinado", r"fechado", r"ta (?:bom|certo|otimo|combinado)",
            r"esta (?:bem|certo|otimo|combinado|confirmado)", r"certo", r"com certeza", r"perfeito", r"otimo", r"show", r"tranquilo", r"bora",
            r"vou sim", r"(?:vou|vamos) estar la", r"estarei la", r"estaremos la",
            r"ate (?:amanha|logo|mais|segunda|terca|quarta|quinta|sexta|sabado|domingo|la)", r"isso", r"exato", r"positivo", r"joia",
            r"(?:td|tudo) (?:bem|certo|ok)", r"sem problema\w*",
        ),
        "it": (
            r"(?:^|(?<=, ))si(?= |$)", r"sii+", r"certo", r"certamente", r"va bene", r"vabbene", r"vabene", r"va benissimo", r"va benone",
            r"confermo", r"confermat\w*", r"d accordo", r"daccordo", r"perfetto", r"ci saro", r"ci saremo", r"ci vediamo",
            r"a (?:domani|dopo|presto|lunedi|martedi|mercoledi|giovedi|venerdi|sabato|domenica)", r"volentieri", r"sicuro", r"ottimo",
            r"benissimo", r"assolutamente", r"senz altro", r"esatto", r"nessun problema",
        ),
    },
    "thanks": {
        "*": (),
        "en": (
            r"thanks?\w*", r"thank (?:you|u|ya|yu)", r"thanx", r"thnx", r"thnks", r"thks", r"thx", r"tx", r"ty", r"tysm", r"tyvm",
            r"appreciate\w*", r"cheers", r"much appreciated", r"many thanks",
        ),
        "es": (r"gracias", r"grax", r"grasias", r"grs", r"agradec\w*", r"se agradece"),
        "fr": (r"merci\w*", r"mci", r"mrc", r"remerci\w*"),
        "de": (r"danke\w*", r"dank", r"dankeschon"),
        "pt": (r"obrigad\w*", r"obg\w*", r"brigad\w*", r"valeu", r"vlw", r"agradec\w*", r"grato", r"grata"),
        "it": (r"grazie\w*", r"grz", r"ringrazi\w*"),
    },
}

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words that say which language a reply is in (shared ones split the vote).
STOPWORDS: Mapping[str, frozenset[str]] = {
    "en": _words(
        "the i you me my is are it to can we do will be at for this that and not what im u ur pls please of in on with"
        " have has just get got your our us about would could should how when where who why they he she am was were"
        " there here see then sorry today tomorrow tmrw morning afternoon tonight appointment appt instead t ll s m"
        " need want make come time day week take one first haha lol no a maybe"
    ),
    "es": _words(
        "el la los las de que y en un una mi me por para con es esta estoy no lo se al del muy pero mas ya hay favor"
        " puedo quiero necesito si su sus tu te yo usted ustedes hola cita hoy manana bien todo cuando donde como"
        " tengo nos les le ahi aqui semana dia hora porfa opcion quiero primera primero jaja a voy ir vez tal baja basta"
        " mensajes numero"
    ),
    "fr": _words(
        "le la les de des du je tu vous est et un une mon ma mes pas ne pour avec c j m d l qu ca oui non svp ce qui"
        " que nous on suis etes sera au aux rdv plus bien tres demain aujourd hui si stp moi rendez semaine jour heure"
        " h choix prends premier premiere reponse mdr a peut etre"
    ),
    "de": _words(
        "ich du sie der die das und ist nicht ein eine einen mir mich mein meine meinen bitte ja nein kann bin wir"
        " auf um mit zu es geht den dem von fur nach heute morgen uhr termin noch mal gerne leider auch wie wo was"
        " uns euch ihr ihnen nachste woche nummer nehme erste stopp vielleicht nachrichten"
    ),
    "pt": _words(
        "o a os as de que e em um uma meu minha me por pra para com nao voce voces ta esta sim isso esse essa do"
        " da no na dos das vou posso quero preciso hoje amanha tem muito ate pode ser consulta semana dia horas"
        " obg vcs vc opcao quero primeira primeiro kkk favor mensagem mensagens sair talvez depois basta numero"
    ),
    "it": _words(
        "il lo la i gli le di che e un una mio mia mi per con non sono ci si ho ti anche ma piu questo del della"
        " al alla sei siete vi domani oggi posso voglio devo cosa appuntamento settimana giorno ore dopo opzione"
        " scelgo prima primo ahah no a forse basta numero messaggi"
    ),
}

_WORD = regex.compile(r"(?<![a-z\\])[a-z]{2,}(?![a-z\\*+?{(\[])")
_STEM = regex.compile(r"(?<![a-z\\])([a-z]{4,})\\w\*")


def compiled(fragments: tuple[str, ...]) -> regex.Pattern[str] | None:
    """One pattern matching any of `fragments` as whole tokens of `Reply.words`."""
    if not fragments:
        return None
    return regex.compile(r"(?<![^ ])(?:" + "|".join(f"(?:{f})" for f in fragments) + r")(?![^ ])")


def vocabulary() -> frozenset[str]:
    """Whole words and stems ("cancel" of "cancel\\w*") the lexicon spells out: what typos are read as."""
    words: set[str] = set(BARE_STOP_WORDS) | stems()
    for by_language in LEXICON.values():
        for fragments in by_language.values():
            for fragment in fragments:
                words.update(_WORD.findall(fragment))
    for stopwords in STOPWORDS.values():
        words.update(w for w in stopwords if len(w) >= 2)
    return frozenset(words)


def stems() -> frozenset[str]:
    """Word beginnings the lexicon matches with any ending: a token starting with one is no typo."""
    return frozenset(
        stem
        for by_language in LEXICON.values()
        for fragments in by_language.values()
        for fragment in fragments
        for stem in _STEM.findall(fragment)
    )
