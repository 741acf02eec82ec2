"""Scripts, queries and clip choices for the speechsearch dev set (data only).

Read by ``make_devset.py``. Numbers are written out exactly as they are spoken.

Turn tuples are ``(speaker, text)`` or ``(speaker, text, "key")``; speaker is
"A" (agent) or "C" (customer). The consecutive ``"key"`` turns of a call are the
span where the call's intent is expressed: that span is what an intent query must
find. ``HOLD`` inserts a few seconds of hold music. ``"lexical"`` lists
``(query, substring of the turn that says it, identifier)``: a query that names
one call by its number, name or product code; the identifier is the part of the
query a transcript must contain.

Wording rule: the intent queries in ``INTENT_QUERIES`` share no content word with
any call of their intent (checked by ``make_devset.py --check-wording``), so a
search system has to match meaning, not words.
"""

HOLD = "HOLD"

# voice keys (see make_devset.VOICES):
#   slt_hts  festival HTS US female      fl_slt  flite US female
#   fl_rms   flite US male               fl_awb  flite Scottish male
#   fl_kal   flite US male (diphone)     es_usf  espeak-ng US female
#   es_gbf   espeak-ng British female    es_usm  espeak-ng US male

CALLS = [
    # ------------------------------------------------------------------ refund
    {
        "name": "refund-01", "intent": "refund", "codec": "mp3",
        "voices": {"A": "fl_rms", "C": "slt_hts"},
        "turns": [
            ("A", "Good morning, Bluebird Sports, this is Kevin speaking. What can I do for you?"),
            ("C", "Hi Kevin. My card was debited twice for the same pair of running shoes.", "key"),
            ("A", "I'm sorry about that. Could I get your name and the order number?"),
            ("C", "Priya Shah, order four four seven one."),
            ("A", "Thank you, Miss Shah. Yes, I see two charges of sixty four dollars, made a minute apart."),
            ("C", "Exactly. I only got one pair, so please cancel the extra one."),
            ("A", "Done. I've refunded the second charge. It should show on your statement in three to five days."),
            ("C", "Perfect, thank you."),
            ("A", "You're welcome, Priya. Enjoy the shoes."),
        ],
        "lexical": [("order 4471 double charge", "four four seven one", "4471")],
    },
    {
        "name": "refund-02", "intent": "refund", "codec": "opus",
        "voices": {"A": "es_usf", "C": "fl_awb"},
        "turns": [
            ("A", "Hello, Kitchen Plus customer care, Laura speaking."),
            ("C", "Hi Laura. I ordered one blender, the K three hundred, but my statement lists two identical transactions for it.", "key"),
            ("A", "Let me check that for you. What's your name and the order number?"),
            ("C", "Tom Becker. The order is eight one zero six."),
            ("A", "Thanks, Tom. You're right, the system took one hundred and twenty dollars twice."),
            ("C", "Could you return the extra amount to my card, please?"),
            ("A", "Of course. I've issued a refund for the duplicate transaction. You'll see it in about a week."),
            ("C", "Great, that's all I needed. Bye now."),
        ],
        "lexical": [("K-300 blender", "K three hundred", "K300")],
    },
    {
        "name": "refund-03", "intent": "refund", "codec": "mp3_8k_tel",
        "voices": {"A": "es_gbf", "C": "fl_rms"},
        "turns": [
            ("A", "Thanks for calling Harbor Books, my name is Sam."),
            ("C", "Hello Sam. When I checked out yesterday the page froze, so I pressed the button again, and now I've been charged for both attempts.", "key"),
            ("A", "That happens sometimes, sorry. Can you give me your name and order reference?"),
            ("C", "Grace Lee, order five three eight zero."),
            ("A", "Thanks, Grace. I can see the first attempt went through as well, so you were billed forty two dollars twice."),
            ("C", "Can you reverse the second one, please?"),
            ("A", "Yes, I've reversed it. Your bank may take a few days to show it."),
            ("C", "Okay, thanks for sorting that out."),
        ],
        "lexical": [("order 5380 charged for both attempts", "five three eight zero", "5380")],
    },
    # ---------------------------------------------------------- account_locked
    {
        "name": "account-01", "intent": "account_locked", "codec": "opus",
        "voices": {"A": "slt_hts", "C": "fl_kal"},
        "turns": [
            ("A", "Good afternoon, Nimbus Cloud support, this is Hannah."),
            ("C", "Hi Hannah. I can't get into my account. It says my password is wrong, even though I'm sure it's right.", "key"),
            ("A", "Let me help. What's your name and your customer number?"),
            ("C", "Daniel Ortiz, customer number six two nine eight."),
            ("A", "Thanks, Daniel. I see the account was locked after six wrong attempts this morning."),
            ("C", "Oh, that was probably my son trying on the tablet."),
            ("A", "That makes sense. I've unlocked it and sent a temporary password to your phone."),
            ("C", "Got it, it works now. Thanks."),
            ("A", "Great. Have a good day."),
        ],
        "lexical": [("customer number 6298 login problem", "six two nine eight", "6298")],
    },
    {
        "name": "account-02", "intent": "account_locked", "codec": "mp3",
        "voices": {"A": "es_usm", "C": "fl_slt"},
        "turns": [
            ("A", "Amberline Bank, you're speaking with Marcus. How can I help?"),
            ("C", "Hi Marcus. I'm trying to sign in to internet banking, but the security code never comes to my phone, so I'm stuck on the login screen.", "key"),
            ("A", "I'm sorry. Can I confirm your full name and date of birth?"),
            ("C", "Sofia Rossi, the ninth of March, nineteen eighty eight."),
            ("A", "Thank you, Sofia. It looks like we have an old mobile number on file."),
            ("C", "Yes, I changed numbers in January."),
            ("A", "I've updated it. Try signing in again, and the code will come to the new number."),
            ("C", "It worked. I'm in. Thank you."),
        ],
        "lexical": [("Sofia Rossi sign in", "Sofia Rossi", "Sofia Rossi")],
    },
    {
        "name": "account-03", "intent": "account_locked", "codec": "mp3_8k_tel",
        "voices": {"A": "es_usf", "C": "fl_rms"},
        "turns": [
            ("A", "Hello, PixelPlay help desk, Chris speaking."),
            ("C", "Hi Chris. Since this morning the app says I'm blocked and won't let me log on.", "key"),
            ("A", "Okay. Could you tell me the user name?"),
            ("C", "It's Kenji Watanabe, user name kenji eighty one."),
            ("A", "Thanks, Kenji. Our system blocked you after several wrong passwords from another country."),
            ("C", "That wasn't me. I've been at home all week."),
            ("A", "Then I'll reset your password and turn on extra verification. You'll get an e-mail in a minute."),
            ("C", "Perfect, thank you."),
        ],
    },
    # ----------------------------------------------------- cancel_subscription
    {
        "name": "cancel-01", "intent": "cancel_subscription", "codec": "opus",
        "voices": {"A": "fl_rms", "C": "es_gbf"},
        "turns": [
            ("A", "Thanks for calling Peak Fitness, this is Ryan."),
            ("C", "Hi Ryan. I'd like to end my gym membership at the end of this month.", "key"),
            ("A", "Sorry to hear that. What's your name and membership number?"),
            ("C", "Emily Clarke, membership number two two zero four."),
            ("A", "Thank you, Emily. Can I ask what's behind the decision?"),
            ("C", "I've had a knee injury, and my doctor says no training for six months."),
            ("A", "I understand. I could freeze it instead, at no charge."),
            ("C", "No thanks, please just close it."),
            ("A", "Okay, it's done. Your last payment is on the first. Get well soon."),
        ],
        "lexical": [("membership 2204 cancellation", "two two zero four", "2204")],
    },
    {
        "name": "cancel-02", "intent": "cancel_subscription", "codec": "mp3_8k_tel",
        "voices": {"A": "es_usf", "C": "fl_awb"},
        "turns": [
            ("A", "Hello, Skyline TV, you're through to Nadia."),
            ("C", "Hi Nadia. I want to stop my streaming package. We hardly watch anything, and it renews automatically every month.", "key"),
            ("A", "I can help with that. Could I have the name and number on the account?"),
            ("C", "Mark Jensen, account seven seven one five."),
            ("A", "Thanks, Mark. Would a cheaper plan with fewer channels suit you better?"),
            ("C", "No, I'd rather not pay for it at all anymore."),
            ("A", "Alright. I've switched off the renewal, and the package will end on the twentieth."),
            ("C", "Great. Thanks, Nadia."),
        ],
    },
    {
        "name": "cancel-03", "intent": "cancel_subscription", "codec": "mp3",
        "voices": {"A": "fl_kal", "C": "slt_hts"},
        "turns": [
            ("A", "PhotoLab support, this is Ben."),
            ("C", "Hi Ben. Please terminate my yearly PhotoLab Pro subscription. I switched to a different editing program.", "key"),
            ("A", "No problem. What's the e-mail address on the account?"),
            ("C", "It's Olga Petrova, olga dot petrova at example dot com."),
            ("A", "Thanks, Olga. I can offer you three months free if you stay."),
            ("C", "That's nice of you, but I'm sure I won't use it."),
            ("A", "Understood. I've terminated the subscription, so the renewal in June won't happen."),
            ("C", "Thank you very much."),
        ],
        "lexical": [("PhotoLab Pro subscription", "PhotoLab Pro", "PhotoLab Pro")],
    },
    # ----------------------------------------------------------- late_delivery
    {
        "name": "late-01", "intent": "late_delivery", "codec": "opus",
        "voices": {"A": "fl_slt", "C": "fl_awb"},
        "turns": [
            ("A", "Good morning, Home Direct, Lucy speaking."),
            ("C", "Hi Lucy. My sofa was due last Friday, and it still hasn't turned up. Nobody has called me.", "key"),
            ("A", "I'm sorry. What's your name and order number, please?"),
            ("C", "Ahmed Khan, order six six two zero."),
            ("A", "Thanks, Ahmed. The lorry broke down, and the driver's route was cancelled."),
            ("C", "Well, I took a day off work to wait for it."),
            ("A", "I apologize. I've booked it for this Thursday morning, and the delivery fee is waived."),
            ("C", "Okay, Thursday works."),
        ],
        "lexical": [("order 6620 sofa", "six six two zero", "6620")],
    },
    {
        "name": "late-02", "intent": "late_delivery", "codec": "mp3",
        "voices": {"A": "es_usf", "C": "fl_rms"},
        "turns": [
            ("A", "Customer service, this is Paul."),
            ("C", "Hi Paul. I ordered the T forty headphones ten days ago with two day shipping, and they're still not here.", "key"),
            ("A", "Let me look into it. Could I have your name and order number?"),
            ("C", "Nina Kowalski, order three nine five eight."),
            ("A", "Thank you. Please hold while I check with the courier."),
            HOLD,
            ("A", "Thanks for waiting, Nina. The parcel is stuck at the sorting centre. I've escalated it, and if it doesn't move by Friday, we'll send a new pair."),
            ("C", "Okay, thanks Paul."),
        ],
        "lexical": [("T-40 headphones", "T forty", "T40")],
    },
    {
        "name": "late-03", "intent": "late_delivery", "codec": "opus_8k_tel",
        "voices": {"A": "es_gbf", "C": "fl_rms"},
        "turns": [
            ("A", "Hi, Bright Gifts, Megan here."),
            ("C", "Hello Megan. I'm calling about a birthday present I ordered. It was promised for the fifth, and it's now two weeks overdue.", "key"),
            ("A", "Oh no, I'm sorry. What's the name and order number?"),
            ("C", "Luis Garcia, order one one eight seven."),
            ("A", "Thank you, Luis. I'm afraid the courier lost it somewhere on the way."),
            ("C", "The birthday was yesterday."),
            ("A", "I'm really sorry. I'm sending a replacement by overnight express, and you won't pay for this order."),
            ("C", "Alright, thank you."),
        ],
        "lexical": [("order 1187 birthday present", "one one eight seven", "1187")],
    },
    # ------------------------------------------------------------ damaged_item
    {
        "name": "damaged-01", "intent": "damaged_item", "codec": "mp3",
        "voices": {"A": "fl_kal", "C": "slt_hts"},
        "turns": [
            ("A", "Thank you for calling Lumen Living, this is Oscar."),
            ("C", "Hi Oscar. The table lamp I ordered, the model L twelve, arrived with the glass shade cracked in three places.", "key"),
            ("A", "I'm so sorry. Can I get your name and order number?"),
            ("C", "Helen Park, order two two four five."),
            ("A", "Thanks, Helen. Could you send us a photo of the box and the lamp?"),
            ("C", "I already have, to your e-mail this morning."),
            ("A", "Great, I see it. I'll e-mail a prepaid return label, and a new lamp ships as soon as the courier collects the old one."),
            ("C", "Perfect, thanks."),
        ],
        "lexical": [("L-12 table lamp", "L twelve", "L12")],
    },
    {
        "name": "damaged-02", "intent": "damaged_item", "codec": "opus",
        "voices": {"A": "slt_hts", "C": "fl_rms"},
        "turns": [
            ("A", "Hello, Vista Electronics, Jenny speaking."),
            ("C", "Hi Jenny. My new television, the Q fifty five, came yesterday, and there's a long crack across the screen.", "key"),
            ("A", "That's awful. What's the name and order number?"),
            ("C", "Peter Novak, order nine zero three two."),
            ("A", "Thank you, Peter. Please keep the original packaging. A courier will pick the set up on Wednesday."),
            ("C", "And I'd prefer to return it rather than get another one."),
            ("A", "No problem. Once it's collected, the full amount goes to your card."),
            ("C", "Thanks, Jenny."),
        ],
        "lexical": [("Q55 television", "Q fifty five", "Q55")],
    },
    {
        "name": "damaged-03", "intent": "damaged_item", "codec": "flac_8k_tel",
        "voices": {"A": "fl_kal", "C": "slt_hts"},
        "turns": [
            ("A", "Good afternoon, Clay and Company, Henry speaking."),
            ("C", "Hi Henry. I just unpacked my dinner set, and two of the six plates are smashed and a bowl is chipped.", "key"),
            ("A", "I'm sorry to hear that. What's your name and order number?"),
            ("C", "Aisha Bello, order seven seven eight one."),
            ("A", "Thanks, Aisha. Do you want to send the whole set back, or only the broken pieces?"),
            ("C", "Just the broken ones, if I can get replacements."),
            ("A", "Sure. I'll send a return bag for the three pieces, and the new ones go out today."),
            ("C", "Lovely, thank you."),
        ],
    },
    # ---------------------------------------------------------- change_address
    {
        "name": "address-01", "intent": "change_address", "codec": "opus",
        "voices": {"A": "es_usm", "C": "slt_hts"},
        "turns": [
            ("A", "Hi, Greenleaf Market, this is Tony."),
            ("C", "Hi Tony. I just placed an order, but it's going to my old flat. I moved last weekend. Can you send it to my new place instead?", "key"),
            ("A", "Sure, if it hasn't shipped yet. What's the order number?"),
            ("C", "Five one one two, under Julia Weber."),
            ("A", "Thanks, Julia. It's still in the warehouse. What's the new address?"),
            ("C", "Fourteen Elm Street, apartment three, Springfield."),
            ("A", "Got it. I've changed the delivery to fourteen Elm Street. It goes out tomorrow."),
            ("C", "Brilliant, thanks."),
        ],
        "lexical": [("14 Elm Street", "Fourteen Elm Street, apartment", "14 Elm Street")],
    },
    {
        "name": "address-02", "intent": "change_address", "codec": "mp3",
        "voices": {"A": "fl_slt", "C": "es_usm"},
        "turns": [
            ("A", "Swift Parcel Service, Diane speaking."),
            ("C", "Hi Diane. My parcel is due on Thursday, but nobody will be home. Could the driver bring it to my office on Harbor Road instead?", "key"),
            ("A", "Let me see. Can I have your name and the tracking number?"),
            ("C", "Robert Hughes, tracking number two six nine zero."),
            ("A", "Thanks, Robert. What's the office address exactly?"),
            ("C", "Unit seven, forty two Harbor Road, Bristol."),
            ("A", "Done. The driver will bring it to unit seven, forty two Harbor Road on Thursday."),
            ("C", "Thank you."),
        ],
        "lexical": [("42 Harbor Road Bristol", "Unit seven, forty two Harbor Road, Bristol", "42 Harbor Road")],
    },
    {
        "name": "address-03", "intent": "change_address", "codec": "mulaw_8k_tel",
        "voices": {"A": "fl_awb", "C": "fl_rms"},
        "turns": [
            ("A", "Hello, Daily Box, Steve here."),
            ("C", "Hi Steve. I've just started living in Denver, so my weekly meal box needs to go to a different street from now on.", "key"),
            ("A", "Of course. Can I have your name and account number?"),
            ("C", "Mei Chen, account four four zero eight."),
            ("A", "Thank you, Mei. What's the new street and house number?"),
            ("C", "Two hundred Pine Avenue, Denver."),
            ("A", "All done. Starting next Monday, your boxes go to two hundred Pine Avenue."),
            ("C", "Great, thanks Steve."),
        ],
        "lexical": [("200 Pine Avenue Denver", "Two hundred Pine Avenue, Denver", "200 Pine Avenue")],
    },
    # ------------------------------------------------------------ upgrade_plan
    {
        "name": "upgrade-01", "intent": "upgrade_plan", "codec": "opus",
        "voices": {"A": "fl_awb", "C": "es_gbf"},
        "turns": [
            ("A", "Thanks for calling Orbit Mobile, this is Jake."),
            ("C", "Hi Jake. I keep running out of data every month. What would it cost to move to the unlimited tariff?", "key"),
            ("A", "Sure. Can I have your name and phone number?"),
            ("C", "Lena Fischer, the number ends in three one seven nine."),
            ("A", "Thanks, Lena. You're on ten gigabytes for twenty dollars. Unlimited is thirty five a month."),
            ("C", "Is there anything in between?"),
            ("A", "Yes, thirty gigabytes for twenty seven dollars."),
            ("C", "Let's do the unlimited one."),
            ("A", "Done, it starts on your next cycle."),
        ],
    },
    {
        "name": "upgrade-02", "intent": "upgrade_plan", "codec": "mp3",
        "voices": {"A": "es_usf", "C": "fl_rms"},
        "turns": [
            ("A", "Hello, TaskFlow sales, Maria speaking."),
            ("C", "Hi Maria. Our team is growing, and I'd like to go from the Basic tier to Business. How much more is that per person?", "key"),
            ("A", "Happy to help. Which company is this?"),
            ("C", "Hassan Design. My name is Omar Hassan."),
            ("A", "Thanks, Omar. Business is eighteen dollars per user, against ten on Basic."),
            ("C", "And we'd have twelve people."),
            ("A", "That's two hundred and sixteen a month, and I can take ten percent off if you pay yearly."),
            ("C", "Yearly sounds good. Please switch us over."),
        ],
        "lexical": [("Omar Hassan Business tier", "Omar Hassan", "Omar Hassan")],
    },
    {
        "name": "upgrade-03", "intent": "upgrade_plan", "codec": "opus",
        "voices": {"A": "es_usm", "C": "fl_slt"},
        "turns": [
            ("A", "Good evening, Wavenet, this is Leo."),
            ("C", "Hi Leo. I'm thinking of getting the faster fiber package, the F five hundred. What's the price?", "key"),
            ("A", "I can check. Can I have your name and account number?"),
            ("C", "Claire Dubois, account eight eight three one."),
            ("A", "Thank you, Claire. You pay forty dollars now. The F five hundred is fifty five, with free installation."),
            ("C", "Is there a contract?"),
            ("A", "Twelve months, the same as now."),
            ("C", "Okay, let's go ahead with it."),
        ],
        "lexical": [("F-500 fiber package price", "F five hundred. What", "F500")],
    },
    # ------------------------------------------------------------------- fraud
    {
        "name": "fraud-01", "intent": "fraud", "codec": "mp3_8k_tel",
        "voices": {"A": "fl_rms", "C": "slt_hts"},
        "turns": [
            ("A", "Redwood Bank, card services, this is Amy."),
            ("C", "Hi Amy. My wallet was stolen on the train this morning, and my debit card was in it. I need it stopped right away.", "key"),
            ("A", "I'll do that now. Can I have your full name and the last four digits of the card?"),
            ("C", "George Adams, the card ends in four five two one."),
            ("A", "Thank you, George. The card is blocked. I see one attempted payment at a petrol station an hour ago, which was declined."),
            ("C", "Thank goodness."),
            ("A", "A new card will arrive in three to five days."),
            ("C", "Thanks, Amy."),
        ],
        "lexical": [("card ending 4521 stolen", "four five two one", "4521")],
    },
    {
        "name": "fraud-02", "intent": "fraud", "codec": "opus",
        "voices": {"A": "fl_kal", "C": "es_gbf"},
        "turns": [
            ("A", "Good morning, Unity Credit, Daniel speaking."),
            ("C", "Hi Daniel. I've just seen three purchases on my credit card from an electronics shop in another country. I didn't make any of them.", "key"),
            ("A", "I'm sorry. Let's secure the card. What's your name and the last four digits?"),
            ("C", "Isabel Moreno, ending nine zero eight seven."),
            ("A", "Thanks, Isabel. I see them, six hundred dollars in total. I've frozen the card and opened a dispute."),
            ("C", "Will I get that amount back?"),
            ("A", "Yes, you aren't liable for these. A replacement card is on its way."),
            ("C", "Thank you so much."),
        ],
        "lexical": [("card ending 9087", "nine zero eight seven", "9087")],
    },
    {
        "name": "fraud-03", "intent": "fraud", "codec": "mp3",
        "voices": {"A": "fl_awb", "C": "es_usf"},
        "turns": [
            ("A", "Thanks for calling Lakeside Bank, this is Rosa."),
            ("C", "Hi Rosa. I got a text pretending to be you, and I typed my card details into the link. Now I think someone is using my card.", "key"),
            ("A", "Okay, we'll act quickly. What's your name and the last four digits of the card?"),
            ("C", "Victor Nguyen, ending six six one zero."),
            ("A", "Thank you, Victor. There's a pending charge of two hundred and fifty dollars to a gift card website."),
            ("C", "That's not mine."),
            ("A", "I've cancelled the card and stopped that charge. Please never share your details through a text link."),
            ("C", "Lesson learned. Thank you."),
        ],
    },
    # -------------------------------------------------------- internet_outage
    {
        "name": "internet-01", "intent": "internet_outage", "codec": "opus",
        "voices": {"A": "es_usm", "C": "slt_hts"},
        "turns": [
            ("A", "Wavenet technical support, this is Ethan."),
            ("C", "Hi Ethan. My internet has been down since last night. The router, the model X two hundred, just shows a blinking red light.", "key"),
            ("A", "Sorry about that. What's your name and account number?"),
            ("C", "Karen White, account three zero seven five."),
            ("A", "Thanks, Karen. Please unplug the router, wait thirty seconds, and plug it back in."),
            ("C", "Okay, done. Now it's orange."),
            ("A", "There's a fault on the line in your street. Engineers are on it, and it should be fixed by six tonight."),
            ("C", "Alright, thanks for letting me know."),
        ],
        "lexical": [("X-200 router blinking red", "X two hundred", "X200")],
    },
    {
        "name": "internet-02", "intent": "internet_outage", "codec": "mp3",
        "voices": {"A": "fl_rms", "C": "slt_hts"},
        "turns": [
            ("A", "Hello, FastLink help desk, Bella speaking."),
            ("C", "Hi Bella. My wifi keeps cutting out every few minutes, so I can't work from home. The box is the model M nine hundred.", "key"),
            ("A", "Let's fix that. Can I have the account holder's name?"),
            ("C", "Patrick O'Brien, account five eight four two."),
            ("A", "Thanks, Patrick. I can see your modem restarting many times a day. It may be overheating."),
            ("C", "It is pretty hot to touch."),
            ("A", "I'll send you a replacement modem. It'll arrive on Tuesday."),
            ("C", "Will do, thank you."),
        ],
        "lexical": [("M900 modem", "model M nine hundred", "M900")],
    },
    {
        "name": "internet-03", "intent": "internet_outage", "codec": "opus_8k_tel",
        "voices": {"A": "es_gbf", "C": "fl_rms"},
        "turns": [
            ("A", "Good morning, Metro Net support, Ivy here."),
            ("C", "Hello Ivy. Since the storm yesterday we have no connection at all. None of our devices can get online, and the landline is dead too.", "key"),
            ("A", "I'm sorry. Can you confirm your name and account number?"),
            ("C", "Yusuf Demir, account number nine one four six."),
            ("A", "Thank you, Yusuf. There's damage to a cable box on your road. I'm booking a technician."),
            ("C", "When can they come?"),
            ("A", "Tomorrow between eight and twelve."),
            ("C", "Okay, someone will be home."),
        ],
        "lexical": [("account 9146 no connection", "nine one four six", "9146")],
    },
    # ------------------------------------------------------------ invoice_copy
    {
        "name": "invoice-01", "intent": "invoice_copy", "codec": "opus",
        "voices": {"A": "es_usf", "C": "fl_kal"},
        "turns": [
            ("A", "Accounts team, Greenfield Office Supplies, this is Noah."),
            ("C", "Hi Noah. I need a copy of the invoice for our March order. Our accountant needs it for the tax return.", "key"),
            ("A", "Sure. Which company and order number is it?"),
            ("C", "Schmidt Consulting. My name is Anna Schmidt, order six zero four one."),
            ("A", "Thanks, Anna. I'll e-mail the invoice as a PDF to the address on file."),
            ("C", "Could you also add our VAT number on it?"),
            ("A", "Yes, I'll add the VAT number and send it within the hour."),
            ("C", "Great, thank you."),
        ],
        "lexical": [("order 6041 invoice", "order six zero four one", "6041")],
    },
    {
        "name": "invoice-02", "intent": "invoice_copy", "codec": "mp3",
        "voices": {"A": "es_gbf", "C": "fl_awb"},
        "turns": [
            ("A", "Hello, Core Computers, Olivia speaking."),
            ("C", "Hi Olivia. I've lost the receipt for my laptop, the Z fourteen, and I need it for a warranty claim. Could you send me another one?", "key"),
            ("A", "Of course. What's your name and the order number?"),
            ("C", "Martin Cole, order seven three zero eight."),
            ("A", "Thanks, Martin. That was bought on the second of February for nine hundred dollars, right?"),
            ("C", "Yes, that's the one."),
            ("A", "I've sent a duplicate receipt to your e-mail. It should be there in a few minutes."),
            ("C", "Got it already, thanks."),
        ],
        "lexical": [("Z14 laptop receipt", "Z fourteen", "Z14")],
    },
    {
        "name": "invoice-03", "intent": "invoice_copy", "codec": "flac_8k_tel",
        "voices": {"A": "fl_kal", "C": "slt_hts"},
        "turns": [
            ("A", "Thanks for calling Orbit Mobile, this is Kyle."),
            ("C", "Hi Kyle. My company covers my phone costs, so I need itemised bills for the last three months. Can you send those?", "key"),
            ("A", "Certainly. Can I take your name and account number?"),
            ("C", "Fatima Ali, account two five three seven."),
            ("A", "Thank you, Fatima. Shall I post them or e-mail them?"),
            ("C", "E-mail, please, as PDF files."),
            ("A", "Done. You'll get statements for April, May and June shortly."),
            ("C", "Thank you very much."),
        ],
    },
]

# Paraphrased intent queries: relevant = every call of the intent, key span.
INTENT_QUERIES = {
    "refund": [
        "customer wants their money back",
        "paid two times for a single purchase",
        "asking to be reimbursed after being overcharged",
    ],
    "account_locked": [
        "customer is unable to access their profile",
        "shut out because the credentials were not accepted",
        "trouble authenticating on a website",
    ],
    "cancel_subscription": [
        "customer no longer wishes to continue the service",
        "trying to quit a recurring contract",
        "discontinuing a paid arrangement",
    ],
    "late_delivery": [
        "purchase never reached the buyer",
        "consignment delayed beyond the expected date",
        "bought item is taking far too long to show up",
    ],
    "damaged_item": [
        "merchandise ruined during transport",
        "received a defective product",
        "items in poor condition when opened, exchange requested",
    ],
    "change_address": [
        "destination for the consignment must be modified",
        "relocated, so future drop-offs should follow them",
        "redirect goods to another location",
    ],
    "upgrade_plan": [
        "premium option, how expensive is it",
        "interested in a higher level subscription and its fee",
        "upgrading to a bigger bundle",
    ],
    "fraud": [
        "unauthorised spending by a criminal",
        "pickpocketed, asks to deactivate what was in the purse",
        "victim of a phishing scam",
    ],
    "internet_outage": [
        "broadband service is out",
        "unable to browse the web",
        "troubleshooting broken networking hardware",
    ],
    "invoice_copy": [
        "asking for paperwork about a past transaction to be resent",
        "wants a record of charges for bookkeeping",
        "request for proof of purchase documents",
    ],
}

# Query-by-example clips, kind "qbe-tts": (call name, substring of the turn that
# is re-spoken, clip voice). The clip voice must not be used anywhere in that call.
QBE_TTS = [
    ("refund-01", "Exactly. I only got one pair", "fl_kal"),
    ("refund-02", "Could you return the extra amount", "fl_slt"),
    ("account-01", "Oh, that was probably my son", "fl_awb"),
    ("account-02", "Yes, I changed numbers in January.", "fl_rms"),
    ("cancel-01", "I've had a knee injury", "slt_hts"),
    ("cancel-03", "That's nice of you, but I'm sure", "es_usf"),
    ("late-01", "Well, I took a day off work", "fl_kal"),
    ("late-03", "I'm afraid the courier lost it", "slt_hts"),
    ("damaged-02", "And I'd prefer to return it", "es_usm"),
    ("address-01", "Fourteen Elm Street, apartment three", "fl_rms"),
    ("upgrade-01", "Yes, thirty gigabytes", "fl_rms"),
    ("fraud-01", "A new card will arrive", "es_gbf"),
    ("internet-01", "Okay, done. Now it's orange.", "fl_slt"),
    ("invoice-01", "Could you also add our VAT number", "slt_hts"),
]

# Query-by-example clips, kind "qbe-codec": original (codec2-examples raw, 8 kHz)
# -> coded version. ("file", name) uses a coded file shipped with codec2-examples;
# ("c2", mode) runs c2enc/c2dec. span: (start, end) seconds of the original used
# for the clip, or None for all of it.
CODEC_ORIGINALS = {
    # name: (transcript, approximate), target of a clip?
    "forig": "don't throw trash on the street",
    "morig": "that frog jumped through the weeds",
    "big_dog": "the big dog loved to chew on the old rag doll",
    "cross": "they took the cross town bus",
    "hts1a": "the navy attacked the big task force",
    "hts2a": "these days a chicken leg is a rare dish",
    "mmt1": "it's easy to tell the depth of a well",
    "kristoff": "hi this is kristoff ...",
    "cq_ref": "hello cq cq cq calling cq ...",
    "vk5qi": "this is victor kilo five quebec india ... testing one two three four five five four three two one",
    "g3plx": "one two three four five five four three two one ... testing",
    "ve9qrp_10s": "... this is victor echo nine quebec romeo papa ...",
}

QBE_CODEC = [
    ("forig", ("file", "f2400"), None),
    ("morig", ("file", "m2400"), None),
    ("big_dog", ("c2", "1300"), None),
    ("cross", ("c2", "700C"), None),
    ("hts1a", ("c2", "2400"), None),
    ("hts2a", ("c2", "1600"), None),
    ("mmt1", ("c2", "1200"), None),
    ("kristoff", ("c2", "3200"), None),
    ("cq_ref", ("c2", "1300"), (0.0, 5.0)),
    ("vk5qi", ("c2", "2400"), (0.0, 5.5)),
]

# LibriVox sentences (pocketsphinx-testdata) used as distractors, and their format
LIBRIVOX = [("0870", "opus16"), ("0880", "flac16"), ("0890", "opus16"), ("0920", "opus16"),
            ("0930", "flac16")]
